"""Self-service in the console: the wizard's and the client page's settings, and the user page's emailed links."""

import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Client, Role
from app.models.link import RESET_PASSWORD, VERIFY_EMAIL
from app.services import clients as client_service
from app.services import selfservice
from app.services import users as user_service
from tests.helpers import TEST_SECRET_KEY
from tests.integration.helpers import post, set_up_console, sign_in, text
from tests.mailbox import link_in, text_of

NEW = "/admin/clients/new"
ADMIN = "admin:admin"
MAIL_OFF = "AUTHGATE_SMTP_URL is not set, so this server sends no mail"


@pytest.fixture
def admin(app, runner, client, make_client, make_role):
    """The console signed in, with a client `shop` that has two roles."""
    set_up_console(app, runner)
    make_client(client_id="shop", name="Shop")
    make_role("shop", "ROLE_MEMBER", "Every customer")
    make_role("shop", "ROLE_STAFF")
    sign_in(client)
    return client


def wizard_draft(**changes) -> dict:
    """What the wizard's form holds for a web application, with `changes`."""
    fields = {
        "client_id": "forum",
        "name": "Forum",
        "description": "",
        "token_endpoint_auth_methods": ["client_secret_basic"],
        "grant_types": ["authorization_code", "refresh_token"],
        "jwks": "",
        "redirect_uris": ["https://forum.example.com/callback"],
        "post_logout_redirect_uris": [],
        "scopes": ["openid", "profile", "email"],
        "access_token_lifetime": "3600",
        "refresh_token_lifetime": "2592000",
        "refresh_token_max_lifetime": "7776000",
        "require_pkce": "1",
        "token_format": "jwt",
        "signing_alg": "RS256",
        "require_consent": "0",
        "allow_registration": "0",
        "require_verified_email": "0",
        "default_roles": "",
    }
    fields.update(changes)
    return fields


def wizard(admin, step, action="next", url=NEW, **changes):
    return post(admin, url, {"step": str(step), "reached": "5", "action": action, **wizard_draft(**changes)})


def events(kind: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))


def role_flags(client_id: str) -> dict[str, bool]:
    db.session.expire_all()
    client = client_service.get_client(client_id)
    return {
        role.name: role.is_default for role in db.session.scalars(sa.select(Role).where(Role.client_pk == client.id))
    }


def fresh(client_id: str) -> Client:
    db.session.expire_all()
    return client_service.get_client(client_id)


# --- the wizard ------------------------------------------------------------------------------


def test_step_4_offers_the_self_service_settings_only_to_clients_people_sign_in_to(admin):
    page = text(wizard(admin, 4, action="goto:4"))
    assert "Sign-in &amp; self-service" in page
    assert 'name="allow_registration" value="1"' in page and 'name="require_verified_email" value="1"' in page
    assert 'id="default_roles"' in page and "created with the client" in page

    m2m = text(wizard(admin, 4, action="goto:4", grant_types=["client_credentials"], redirect_uris=[]))
    assert "Sign-in &amp; self-service" not in m2m
    # Left out, but carried: going back and forth loses nothing.
    assert '<input type="hidden" name="allow_registration" value="0">' in m2m


def test_the_wizard_creates_a_client_with_registration_on_and_its_default_roles(admin):
    checked = wizard(
        admin,
        4,
        allow_registration="1",
        require_verified_email="1",
        default_roles="ROLE_READER, ROLE_POSTER ROLE_READER",
    )
    assert checked.status_code == 200
    review = text(checked)
    assert "Self-registration" in review and '<code class="tag">ROLE_POSTER</code>' in review

    saved = wizard(
        admin,
        5,
        action="save",
        allow_registration="1",
        require_verified_email="1",
        default_roles="ROLE_READER, ROLE_POSTER",
    )
    assert saved.status_code == 303 and saved.headers["Location"] == "/admin/clients/forum"
    client = fresh("forum")
    assert client.allow_registration is True and client.require_verified_email is True
    assert role_flags("forum") == {"ROLE_READER": True, "ROLE_POSTER": True}
    assert client_service.default_roles(client) == ["ROLE_POSTER", "ROLE_READER"]

    created = events("client_created")[-1]
    assert created.actor == ADMIN
    assert created.detail["changes"]["allow_registration"] == [None, True]
    assert created.detail["changes"]["default_roles"] == [None, ["ROLE_POSTER", "ROLE_READER"]]
    assert {e.detail["role"] for e in events("role_created") if e.client_pk == client.id} == {
        "ROLE_READER",
        "ROLE_POSTER",
    }

    page = text(admin.get("/admin/clients/forum"))
    assert '<input checked id="allow_registration"' in page
    assert re.search(r'value="ROLE_READER" checked', page)


@pytest.mark.parametrize("names", ["1ROLE", "ROLE_OK bad/name", "x" * 70])
def test_a_bad_default_role_name_is_shown_at_step_4_and_nothing_is_made(admin, names):
    response = wizard(admin, 4, default_roles=names)
    assert response.status_code == 422
    assert 'name="step" value="4"' in text(response)
    assert "is not a role name: use a letter" in text(response)
    saved = wizard(admin, 5, action="save", default_roles=names)
    assert saved.status_code == 422 and 'name="step" value="4"' in text(saved)
    assert client_service.find_client("forum") is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Role).where(Role.name == "ROLE_OK")) == 0


def test_editing_in_the_wizard_keeps_the_settings_and_needs_existing_roles(admin):
    client_service.update_client("shop", allow_registration=True, default_roles=["ROLE_MEMBER"])
    url = "/admin/clients/shop/edit"
    page = text(admin.get(url))
    assert '<input type="hidden" name="allow_registration" value="1">' in page
    assert '<input type="hidden" name="default_roles" value="ROLE_MEMBER">' in page
    assert "Each must be one of the client's roles" in text(wizard(admin, 4, "goto:4", url, client_id="shop"))

    early = wizard(admin, 4, "next", url, client_id="shop", name="Shop", default_roles="ROLE_TYPO")
    assert early.status_code == 422 and 'name="step" value="4"' in text(early)
    assert "has no role &#39;ROLE_TYPO&#39;." in text(early)

    unknown = wizard(
        admin,
        5,
        "save",
        url,
        client_id="shop",
        name="Shop",
        allow_registration="1",
        default_roles="ROLE_MEMBER ROLE_TYPO",
    )
    assert unknown.status_code == 422 and "Client &#39;shop&#39; has no role &#39;ROLE_TYPO&#39;." in text(unknown)
    assert role_flags("shop") == {"ROLE_MEMBER": True, "ROLE_STAFF": False}

    renamed = wizard(
        admin, 5, "save", url, client_id="shop", name="The Shop", allow_registration="1", default_roles="role_staff"
    )
    assert renamed.status_code == 303
    assert fresh("shop").allow_registration is True and fresh("shop").name == "The Shop"
    assert role_flags("shop") == {"ROLE_MEMBER": False, "ROLE_STAFF": True}


# --- the client page -------------------------------------------------------------------------


def test_the_client_page_toggles_the_settings_and_default_roles_and_the_audit_log_has_them(admin):
    page = text(admin.get("/admin/clients/shop"))
    assert "Self-service" in page and "Every customer" in page
    assert '<input checked id="allow_registration"' not in page

    response = post(
        admin,
        "/admin/clients/shop/self-service",
        {"allow_registration": "y", "require_verified_email": "y", "default_roles": ["ROLE_MEMBER"]},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/admin/clients/shop"
    assert "Self-service settings saved." in text(admin.get("/admin/clients/shop"))
    client = fresh("shop")
    assert client.allow_registration and client.require_verified_email
    assert role_flags("shop") == {"ROLE_MEMBER": True, "ROLE_STAFF": False}
    updated = events("client_updated")[-1]
    assert updated.actor == ADMIN
    assert updated.detail["changes"] == {
        "allow_registration": [False, True],
        "require_verified_email": [False, True],
        "default_roles": [[], ["ROLE_MEMBER"]],
    }

    # Unticked boxes switch off; no role chosen leaves new users without one, which the page says.
    response = post(admin, "/admin/clients/shop/self-service", {"allow_registration": "y"})
    assert response.status_code == 303
    assert role_flags("shop") == {"ROLE_MEMBER": False, "ROLE_STAFF": False}
    assert fresh("shop").require_verified_email is False
    assert events("client_updated")[-1].detail["changes"] == {
        "require_verified_email": [True, False],
        "default_roles": [["ROLE_MEMBER"], []],
    }
    assert "people who register get no role" in text(admin.get("/admin/clients/shop"))


def test_htmx_gets_the_panel_back_and_a_deleted_role_is_an_error_next_to_the_roles(admin):
    htmx = {"HX-Request": "true", "HX-Target": "self_service"}
    response = post(admin, "/admin/clients/shop/self-service", {"default_roles": ["ROLE_STAFF"]}, headers=htmx)
    assert response.status_code == 200
    assert text(response).lstrip().startswith('<section id="self_service"') and "<html" not in text(response)
    assert "Self-service settings saved." in text(response)

    response = post(admin, "/admin/clients/shop/self-service", {"default_roles": ["ROLE_GONE"]}, headers=htmx)
    assert response.status_code == 422 and "no role &#39;ROLE_GONE&#39;" in text(response)
    assert role_flags("shop") == {"ROLE_MEMBER": False, "ROLE_STAFF": True}


def test_a_post_without_the_csrf_token_changes_nothing(admin):
    response = admin.post("/admin/clients/shop/self-service", data={"allow_registration": "y"})
    assert response.status_code in (400, 422)
    assert fresh("shop").allow_registration is False


def test_a_machine_to_machine_client_has_no_self_service_panel(admin, make_client):
    make_client(client_id="batch", grant_types=["client_credentials"], redirect_uris=[], scopes=["jobs"])
    assert "Self-service" not in text(admin.get("/admin/clients/batch"))


# --- the user page: emailed links ------------------------------------------------------------


@pytest.fixture
def bob(admin, make_user):
    return make_user("shop", "bob", email="bob@example.com", first_name="Bob")


def token_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


def test_resend_verification_delivers_a_link_that_verifies_the_address(admin, bob, mailbox):
    page = text(admin.get("/admin/clients/shop/users/bob"))
    assert "Email verified" in page and "Resend verification email" in page and "Send password reset link" in page

    response = post(admin, "/admin/clients/shop/users/bob/send-verification")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/clients/shop/users/bob"
    assert "Sent a verification link to bob@example.com." in text(admin.get(response.headers["Location"]))
    message = mailbox.wait_for("bob@example.com")
    assert "Shop" in message["Subject"] and "Verify" in message["Subject"]
    link = link_in(message)
    assert link.startswith("http://localhost/verify/agl_")
    assert selfservice.peek(token_of(link), VERIFY_EMAIL) is not None

    user, _ = selfservice.verify_email(token_of(link))
    assert user.email_verified
    sent = events("email_verification_sent")[-1]
    assert sent.actor == ADMIN and sent.username == "bob"
    page = text(admin.get("/admin/clients/shop/users/bob"))
    assert "Resend verification email" not in page and "Send password reset link" in page


def test_send_reset_link_delivers_a_link_that_sets_a_new_password(admin, bob, mailbox):
    response = post(admin, "/admin/clients/shop/users/bob/send-reset")
    assert response.status_code == 303
    assert "Sent a password reset link to bob@example.com." in text(admin.get(response.headers["Location"]))
    message = mailbox.wait_for("bob@example.com")
    assert message["Subject"] == "Reset your password for Shop"
    link = link_in(message)
    assert link.startswith("http://localhost/reset/agl_") and "Bob" in text_of(message)

    selfservice.reset_password(token_of(link), "a brand new password")
    db.session.expire_all()
    changed = user_service.get_user(client_service.get_client("shop"), "bob")
    assert user_service.password_matches("a brand new password", changed.password_hash)
    assert selfservice.peek(token_of(link), RESET_PASSWORD) is None  # single use
    assert events("password_reset_sent")[-1].actor == ADMIN


def test_a_user_without_an_email_gets_no_buttons_and_a_post_says_why(admin, make_user, mailbox):
    make_user("shop", "carol", email=None)
    page = text(admin.get("/admin/clients/shop/users/carol"))
    assert "Send password reset link" not in page and "Add an email address under Profile" in page
    response = post(admin, "/admin/clients/shop/users/carol/send-reset")
    assert response.status_code == 422 and "carol has no email address to send a link to." in text(response)
    assert mailbox.messages == []


def test_a_disabled_user_gets_no_link(admin, bob, mailbox):
    user_service.set_enabled("shop", "bob", False)
    page = text(admin.get("/admin/clients/shop/users/bob"))
    assert "Send password reset link" not in page and "enable the account to send" in page
    for action in ("send-reset", "send-verification"):
        response = post(admin, f"/admin/clients/shop/users/bob/{action}")
        assert response.status_code == 422
        assert "bob is disabled; enable the account before sending a link." in text(response)
    assert mailbox.messages == []


@pytest.mark.settings(AUTHGATE_MAIL_ACCOUNT_LIMIT=1)
def test_resending_too_often_is_refused_with_the_wait(admin, bob, mailbox):
    assert post(admin, "/admin/clients/shop/users/bob/send-verification").status_code == 303
    mailbox.wait_for("bob@example.com")
    again = post(admin, "/admin/clients/shop/users/bob/send-verification")
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0
    assert "Too many emails went to bob in the last hour; try again in about" in text(again)
    assert len(mailbox.to("bob@example.com")) == 1


def test_a_mail_server_that_does_not_answer_is_reported(app, admin, bob):
    app.config["AUTHGATE_SMTP_URL"] = "smtp://127.0.0.1:9"  # the discard port: nothing listens
    response = post(admin, "/admin/clients/shop/users/bob/send-reset")
    assert response.status_code == 502
    assert "The email could not be sent. Try again in a few minutes." in text(response)


@pytest.mark.settings(AUTHGATE_ENV="production", AUTHGATE_ISSUER="https://id.example.com", SECRET_KEY=TEST_SECRET_KEY)
def test_in_production_without_smtp_the_console_says_mail_is_off(app, admin, bob):
    assert app.config["AUTHGATE_SMTP_URL"] is None
    for url in ("/admin/", "/admin/clients/shop", "/admin/clients/shop/users/bob"):
        page = text(admin.get(url))
        assert MAIL_OFF in page, url
    user_page = text(admin.get("/admin/clients/shop/users/bob"))
    assert "Send password reset link" not in user_page
    assert MAIL_OFF in text(wizard(admin, 4, "goto:4"))

    response = post(admin, "/admin/clients/shop/users/bob/send-reset")
    assert response.status_code == 503 and MAIL_OFF in text(response)
    assert events("password_reset_sent") == []
