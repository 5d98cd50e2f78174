"""Second factors in the console: the policy in the wizard and on the client page, the user page's reset, the nudge."""

import pyotp
import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Client, PasskeyCredential
from app.services import clients as client_service
from app.services import mfa
from app.services import users as user_service
from tests.integration.helpers import post, set_up_console, sign_in, text
from tests.integration.test_admin_self_service import NEW
from tests.integration.test_admin_self_service import wizard as wizard_of_self_service

ADMIN = "admin:admin"
CONSOLE = client_service.CONSOLE_CLIENT_ID
BOB_PASSWORD = "bob's long password"
NUDGE = 'id="add-factor"'


@pytest.fixture
def admin(app, runner, client, make_client):
    """The console signed in, with a client `shop`."""
    set_up_console(app, runner)
    make_client(client_id="shop", name="Shop")
    sign_in(client)
    return client


def events(kind: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))


def fresh(client_id: str) -> Client:
    db.session.expire_all()
    return client_service.get_client(client_id)


def wizard(admin, step, action="next", url=NEW, **changes):
    """Post a wizard step whose form holds a web application with policy `off`, with `changes`."""
    return wizard_of_self_service(admin, step, action, url, **{"mfa_policy": "off", **changes})


def give_app(client_id: str, username: str) -> None:
    """Set up an authenticator app for the user, as the account page does."""
    client = client_service.get_client(client_id)
    user = user_service.get_user(client, username)
    secret = mfa.start_totp(client, user)
    mfa.confirm_totp(client, user, pyotp.TOTP(secret).now())


def give_passkey(client_id: str, username: str, name: str) -> None:
    client = client_service.get_client(client_id)
    user = user_service.get_user(client, username)
    db.session.add(
        PasskeyCredential(client_pk=client.id, user_id=user.id, credential_id=name, public_key=b"k", name=name)
    )
    db.session.commit()


# --- the wizard ------------------------------------------------------------------------------


def test_step_4_offers_the_policies_only_to_clients_people_sign_in_to(admin):
    page = text(wizard(admin, 4, action="goto:4"))
    assert "Second factors" in page
    for value, wording in mfa.POLICY_TEXT.items():
        assert f'name="mfa_policy" value="{value}"' in page
        assert wording.split(": ", 1)[1][1:] in page  # the service's words, capitalised
    assert 'name="mfa_policy" value="off" checked' in page

    m2m = text(wizard(admin, 4, action="goto:4", grant_types=["client_credentials"], redirect_uris=[]))
    assert 'type="radio" name="mfa_policy"' not in m2m
    assert '<input type="hidden" name="mfa_policy" value="off">' in m2m


def test_the_wizard_creates_a_client_with_the_policy_it_carries_to_the_review(admin):
    review = wizard(admin, 4, mfa_policy="required")
    assert review.status_code == 200 and 'name="step" value="5"' in text(review)
    assert "Every user sets up a second factor at their next sign-in" in text(review)
    # The review carries it to the save, and going back to step 1 keeps it too.
    assert '<input type="hidden" name="mfa_policy" value="required">' in text(review)
    back = text(wizard(admin, 5, "goto:1", mfa_policy="required"))
    assert '<input type="hidden" name="mfa_policy" value="required">' in back

    created = wizard(admin, 5, "save", mfa_policy="required")
    assert created.status_code == 303
    assert fresh("forum").mfa_policy == "required"


def test_a_bad_policy_is_shown_at_step_4_and_nothing_is_made(admin):
    response = wizard(admin, 4, mfa_policy="sometimes")
    assert response.status_code == 422 and 'name="step" value="4"' in text(response)
    assert "Second factors must be one of off, optional, required." in text(response)
    assert client_service.find_client("forum") is None


def test_editing_in_the_wizard_keeps_the_policy(admin):
    client_service.update_client("shop", mfa_policy="optional")
    url = "/admin/clients/shop/edit"
    page = text(admin.get(url))
    assert '<input type="hidden" name="mfa_policy" value="optional">' in page
    assert 'name="mfa_policy" value="optional" checked' in text(
        wizard(admin, 4, "goto:4", url, client_id="shop", mfa_policy="optional")
    )

    renamed = wizard(admin, 5, "save", url, client_id="shop", name="The Shop", mfa_policy="optional")
    assert renamed.status_code == 303
    assert fresh("shop").mfa_policy == "optional" and fresh("shop").name == "The Shop"


# --- the client page -------------------------------------------------------------------------


def test_the_client_page_changes_the_policy_and_the_audit_log_has_it(admin):
    page = text(admin.get("/admin/clients/shop"))
    assert 'id="mfa_panel"' in page and 'name="mfa_policy" value="off" checked' in page

    response = post(admin, "/admin/clients/shop/mfa", {"mfa_policy": "required"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/clients/shop"
    page = text(admin.get("/admin/clients/shop"))
    assert "Second factors are required now." in page and 'name="mfa_policy" value="required" checked' in page
    assert fresh("shop").mfa_policy == "required"
    updated = events("client_updated")[-1]
    assert updated.actor == ADMIN and updated.detail["changes"] == {"mfa_policy": ["off", "required"]}


def test_htmx_gets_the_panel_back_and_a_bad_policy_is_an_error_next_to_it(admin):
    htmx = {"HX-Request": "true", "HX-Target": "mfa_panel"}
    response = post(admin, "/admin/clients/shop/mfa", {"mfa_policy": "optional"}, headers=htmx)
    assert response.status_code == 200
    assert text(response).lstrip().startswith('<section id="mfa_panel"') and "<html" not in text(response)
    assert "Second factors are optional now." in text(response)

    response = post(admin, "/admin/clients/shop/mfa", {"mfa_policy": "always"}, headers=htmx)
    assert response.status_code == 422
    assert "Second factors must be one of off, optional, required." in text(response)
    assert fresh("shop").mfa_policy == "optional"


def test_a_policy_post_without_the_csrf_token_changes_nothing(admin):
    response = admin.post("/admin/clients/shop/mfa", data={"mfa_policy": "required"})
    assert response.status_code in (400, 422)
    assert fresh("shop").mfa_policy == "off"


def test_a_machine_to_machine_client_has_no_policy_panel(admin, make_client):
    make_client(client_id="batch", grant_types=["client_credentials"], redirect_uris=[], scopes=["jobs"])
    assert 'id="mfa_panel"' not in text(admin.get("/admin/clients/batch"))


# --- the user page ---------------------------------------------------------------------------


@pytest.fixture
def bob(admin, make_user):
    """bob, a second admin of the console, who signs in with an authenticator app."""
    user = make_user(CONSOLE, "bob", password=BOB_PASSWORD, roles=[client_service.CONSOLE_ADMIN_ROLE])
    give_app(CONSOLE, "bob")
    return user


def signs_in(app, username: str = "bob", password: str = BOB_PASSWORD):
    """Sign in to the console in a browser of its own; the last page it reached."""
    return sign_in(app.test_client(), username, password)


def test_the_user_page_shows_the_factors_and_reset_removes_them(app, admin, bob):
    give_passkey(CONSOLE, "bob", "YubiKey 5C")
    asked = signs_in(app)
    assert asked.request.path == "/second-factor" and "Two-step verification" in text(asked)

    url = f"/admin/clients/{CONSOLE}/users/bob"
    page = text(admin.get(url))
    assert 'id="factors"' in page and "YubiKey 5C" in page and "10 left" in page
    assert "Reset second factors" in page and "Resetting removes all of them" in page

    response = post(admin, f"{url}/reset-factors")
    assert response.status_code == 303 and response.headers["Location"] == url
    page = text(admin.get(url))
    assert "Removed every second factor of bob; their next sign-in asks for none." in page
    assert "Reset second factors" not in page and "YubiKey 5C" not in page
    assert not mfa.has_factor(user_service.get_user(fresh(CONSOLE), "bob"))
    reset = events(mfa.MFA_RESET)[-1]
    assert reset.actor == ADMIN and reset.detail["had_factors"] is True

    # Now the password alone signs bob in, and his dashboard asks him to add a factor.
    landed = signs_in(app)
    assert landed.request.path == "/admin/" and NUDGE in text(landed)


def test_htmx_reset_answers_with_the_panel_and_a_user_without_factors_has_no_button(admin, make_user):
    make_user("shop", "carol")
    url = "/admin/clients/shop/users/carol"
    page = text(admin.get(url))
    assert "Reset second factors" not in page and "Second factors are off for Shop" in page

    client_service.update_client("shop", mfa_policy="optional")
    give_app("shop", "carol")
    assert "Reset second factors" in text(admin.get(url))
    response = post(admin, f"{url}/reset-factors", headers={"HX-Request": "true", "HX-Target": "factors"})
    assert response.status_code == 200 and text(response).lstrip().startswith('<section id="factors"')
    assert "Removed every second factor of carol" in text(response) and "carol has none" in text(response)


def test_a_reset_post_without_the_csrf_token_removes_nothing(app, admin, bob):
    response = admin.post(f"/admin/clients/{CONSOLE}/users/bob/reset-factors")
    assert response.status_code == 400
    assert mfa.has_factor(user_service.get_user(fresh(CONSOLE), "bob"))


# --- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_nudges_an_admin_without_a_factor_until_they_add_one(admin):
    assert fresh(CONSOLE).mfa_policy == "optional"  # `flask init` made the console so
    page = text(admin.get("/admin/"))
    assert NUDGE in page and f'href="/account/{CONSOLE}"' in page

    give_app(CONSOLE, "admin")
    assert NUDGE not in text(admin.get("/admin/"))


def test_no_nudge_where_the_console_offers_no_second_factor(admin):
    client_service.update_client(CONSOLE, mfa_policy="off")
    assert NUDGE not in text(admin.get("/admin/"))
