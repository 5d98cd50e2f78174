"""Console clients: list and search, the 4-step wizard (new and edit), secret rotation, deletion."""

import re

import pytest
import sqlalchemy as sa

from app import capabilities
from app.extensions import db
from app.models import Client, Role, User
from app.services import clients as client_service
from app.services.crypto import sha256_hex
from tests.integration.helpers import post, set_up_console, sign_in, text

NEW = "/admin/clients/new"


@pytest.fixture
def admin(app, runner, client):
    set_up_console(app, runner)
    sign_in(client)
    return client


def draft(**changes) -> dict:
    """What the wizard form holds for a web application, with `changes`."""
    fields = {
        "client_id": "shop",
        "name": "Shop",
        "description": "The web shop",
        "token_endpoint_auth_methods": ["client_secret_basic"],
        "grant_types": ["authorization_code", "refresh_token"],
        "jwks": "",
        "redirect_uris": ["https://shop.example.com/callback"],
        "post_logout_redirect_uris": [],
        "scopes": ["openid", "profile", "email", "roles"],
        "access_token_lifetime": "3600",
        "refresh_token_lifetime": "2592000",
        "refresh_token_max_lifetime": "7776000",
        "require_pkce": "1",
        "token_format": "jwt",
        "signing_alg": "RS256",
        "require_consent": "0",
    }
    fields.update(changes)
    return fields


def step(admin, number, action="next", url=NEW, headers=None, **changes):
    data = {"step": str(number), "reached": "5", "action": action, **draft(**changes)}
    return post(admin, url, data, headers=headers)


def count_clients() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Client))


def shown_step(response) -> int:
    return int(re.search(r'name="step" value="(\d)"', text(response)).group(1))


# --- the list --------------------------------------------------------------------------


def test_clients_list_searches_in_the_database_and_pages(admin, make_client):
    for number in range(30):
        make_client(client_id=f"app-{number:02d}", name=f"App {number:02d}")
    make_client(client_id="billing", name="Billing Portal")
    page = admin.get("/admin/clients")
    assert page.status_code == 200
    assert "1\u201325 of 32" in text(page) and "Next →" in text(page)
    second = admin.get("/admin/clients?page=2")
    assert "app-29" in text(second) and "26\u201332 of 32" in text(second)
    found = admin.get("/admin/clients?q=portal")
    assert "Billing Portal" in text(found) and "app-01" not in text(found)
    assert "No client matches" in text(admin.get("/admin/clients?q=zzz"))


def test_the_search_box_gets_only_the_results_block(admin, make_client):
    make_client(client_id="billing", name="Billing")
    response = admin.get("/admin/clients?q=bill", headers={"HX-Request": "true", "HX-Target": "results"})
    assert response.status_code == 200
    assert text(response).lstrip().startswith('<div id="results"') and "<html" not in text(response)
    assert "billing" in text(response)


def test_a_missing_client_is_a_404_page(admin):
    response = admin.get("/admin/clients/nope")
    assert response.status_code == 404 and "Not found" in text(response)


# --- the wizard ------------------------------------------------------------------------


def test_wizard_starts_at_basic_info_with_the_defaults(admin):
    page = admin.get(NEW)
    assert page.status_code == 200
    html = text(page)
    assert "Register an application" in html and 'name="client_id"' in html
    # The later steps' defaults ride along as hidden fields.
    assert '<input type="hidden" name="token_endpoint_auth_methods" value="client_secret_basic">' in html
    assert '<input type="hidden" name="access_token_lifetime" value="3600">' in html


@pytest.mark.parametrize(
    ("changes", "field_error"),
    [
        ({"client_id": ""}, "Client ID is required."),
        ({"client_id": "ab"}, "Client ID must be 3 to 64 characters"),
        ({"client_id": "My App"}, "Client ID must be 3 to 64 characters"),
        ({"client_id": "authgate-console"}, "&#39;authgate-console&#39; is already taken."),
        ({"name": ""}, "Name is required."),
        ({"name": "x" * 121}, "Name must be at most 120 characters."),
    ],
)
def test_step_1_shows_each_error_and_keeps_what_was_typed(admin, changes, field_error):
    response = step(admin, 1, **changes)
    assert response.status_code == 422
    assert shown_step(response) == 1
    assert field_error in text(response)
    assert 'value="The web shop"' not in text(response)  # the description is a textarea
    assert "The web shop</textarea>" in text(response)
    assert count_clients() == 1


@pytest.mark.parametrize(
    ("changes", "field_error"),
    [
        ({"token_endpoint_auth_methods": []}, "Choose at least one authentication method."),
        ({"grant_types": []}, "Choose at least one grant type."),
        (
            {"token_endpoint_auth_methods": ["none"], "grant_types": ["client_credentials"]},
            "client_credentials needs a confidential client",
        ),
        ({"grant_types": ["refresh_token"]}, "refresh_token is only issued with authorization_code."),
        ({"token_endpoint_auth_methods": ["none", "client_secret_basic"]}, "cannot be combined"),
        ({"token_endpoint_auth_methods": ["private_key_jwt"]}, "private_key_jwt needs the client&#39;s public keys"),
        (
            {"token_endpoint_auth_methods": ["private_key_jwt"], "jwks": "{nope"},
            "Public keys must be a JSON Web Key Set.",
        ),
    ],
)
def test_step_2_rules_are_the_services(admin, changes, field_error):
    response = step(admin, 2, **changes)
    assert response.status_code == 422 and shown_step(response) == 2
    assert field_error in text(response)


@pytest.mark.parametrize(
    ("preset", "methods", "grants"),
    [
        ("web", ["client_secret_basic"], ["authorization_code", "refresh_token"]),
        ("spa", ["none"], ["authorization_code", "refresh_token"]),
        ("m2m", ["client_secret_basic"], ["client_credentials"]),
    ],
)
def test_presets_fill_in_the_capabilities(admin, preset, methods, grants):
    response = step(
        admin, 2, f"preset:{preset}", token_endpoint_auth_methods=["private_key_jwt"], grant_types=[],
        scopes=["invoices:read"] if preset != "m2m" else ["openid", "invoices:read"],
    )  # fmt: skip
    html = text(response)
    assert response.status_code == 200 and shown_step(response) == 2
    checked = re.findall(r'name="(token_endpoint_auth_methods|grant_types)" value="([a-z_]+)" checked', html)
    assert sorted(v for k, v in checked if k == "token_endpoint_auth_methods") == sorted(methods)
    assert sorted(v for k, v in checked if k == "grant_types") == sorted(grants)
    assert 'class="preset selected"' in html
    scopes = re.findall(r'name="scopes" value="([^"]+)"', html)
    # People sign in to web and single-page apps; a machine-to-machine client keeps only API scopes.
    assert ("openid" in scopes) is (preset != "m2m") and "invoices:read" in scopes
    assert count_clients() == 1


def test_every_capability_has_a_one_line_explanation(admin):
    html = text(step(admin, 1))
    for method in capabilities.AUTH_METHODS:
        assert f'value="{method}"' in html
    for grant in capabilities.GRANT_TYPES:
        assert f'value="{grant}"' in html
    assert html.count('class="option-text"') == len(capabilities.AUTH_METHODS) + len(capabilities.GRANT_TYPES)


def test_going_back_keeps_what_was_typed(admin):
    forward = step(admin, 1, client_id="kept-id", name="Kept Name")
    assert shown_step(forward) == 2
    back = step(admin, 2, "back", client_id="kept-id", name="Kept Name", grant_types=["client_credentials"])
    assert shown_step(back) == 1
    assert 'value="kept-id"' in text(back) and 'value="Kept Name"' in text(back)
    assert '<input type="hidden" name="grant_types" value="client_credentials">' in text(back)


def test_redirect_uris_are_added_and_removed_inline(admin):
    added = step(
        admin,
        3,
        "add:redirect_uris",
        redirect_uris=["https://a.example.com/cb"],
        new_redirect_uris="https://b.example.com/cb",
    )
    assert added.status_code == 200 and shown_step(added) == 3
    html = text(added)
    assert html.count('<input type="hidden" name="redirect_uris"') == 2
    removed = step(
        admin, 3, "remove:redirect_uris:0", redirect_uris=["https://a.example.com/cb", "https://b.example.com/cb"]
    )
    assert re.findall(r'name="redirect_uris" value="([^"]+)"', text(removed)) == ["https://b.example.com/cb"]


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("http://shop.example.com/cb", "plain http is only allowed for localhost"),
        ("https://shop.example.com/cb#x", "must not contain a fragment"),
        ("https://*.example.com/cb", "without spaces or wildcards"),
        ("/callback", "must be an absolute URI"),
        ("myapp:/cb", "reverse-domain form"),
    ],
)
def test_a_bad_redirect_uri_is_refused_next_to_its_input_and_kept(admin, typed, error):
    response = step(admin, 3, "add:redirect_uris", new_redirect_uris=typed)
    assert response.status_code == 422
    assert error in text(response)
    assert f'name="new_redirect_uris" value="{typed}"' in text(response)
    assert text(response).count('<input type="hidden" name="redirect_uris"') == 1


def test_a_uri_typed_but_not_added_is_taken_in_on_next(admin):
    response = step(admin, 3, redirect_uris=[], new_redirect_uris="http://localhost:3000/cb")
    assert shown_step(response) == 4
    assert '<input type="hidden" name="redirect_uris" value="http://localhost:3000/cb">' in text(response)


def test_enter_in_an_add_input_adds_instead_of_moving_on(admin):
    response = step(admin, 3, "enter", new_post_logout_redirect_uris="https://shop.example.com/")
    assert shown_step(response) == 3
    assert 'name="post_logout_redirect_uris" value="https://shop.example.com/"' in text(response)


def test_code_flow_needs_a_redirect_uri(admin):
    response = step(admin, 3, redirect_uris=[])
    assert response.status_code == 422 and "Add at least one redirect URI for authorization_code." in text(response)


def test_scopes_are_chips_with_custom_ones(admin):
    added = step(admin, 3, "add:scopes", scopes=["openid", "invoices:read"], new_scopes="invoices:write")
    html = text(added)
    assert 'class="chip chip-custom"' in html and "invoices:write" in html
    assert re.findall(r'name="scopes" value="([^"]+)"', html)[-2:] == ["invoices:read", "invoices:write"]
    bad = step(admin, 3, "add:scopes", new_scopes='say"hi')
    assert bad.status_code == 422 and "is not a valid scope" in text(bad)


def custom_scopes(response) -> list[str]:
    return re.findall(r'<input type="hidden" name="scopes" value="([^"]+)">', text(response))


@pytest.mark.parametrize("headers", [None, {"HX-Request": "true", "HX-Target": "wizard"}], ids=["form", "htmx"])
@pytest.mark.parametrize("action", ["add:scopes", "next"])
def test_a_scope_with_a_space_is_refused_not_split(admin, action, headers):
    """ "bad scope" is one thing typed into one field: it is not quietly made into two scopes."""
    response = step(admin, 3, action, headers=headers, new_scopes="bad scope")
    assert response.status_code == 422 and shown_step(response) == 3
    html = text(response)
    assert (
        '<div class="field-error" id="new_scopes-error">&#39;bad scope&#39; holds a space, which separates scopes: '
        "add one scope at a time.</div>" in html
    )
    assert 'name="new_scopes" value="bad scope"' in html  # kept, to be corrected
    assert custom_scopes(response) == []


@pytest.mark.parametrize("headers", [None, {"HX-Request": "true", "HX-Target": "wizard"}], ids=["form", "htmx"])
def test_a_repeated_redirect_uri_is_named_not_dropped(admin, headers):
    uri = "https://shop.example.com/callback"  # already on the draft's list
    added = step(admin, 3, "add:redirect_uris", headers=headers, new_redirect_uris=uri)
    assert added.status_code == 422
    html = text(added)
    assert f'<div class="field-error" id="new_redirect_uris-error">&#39;{uri}&#39; is already in the list.' in html
    assert html.count('<input type="hidden" name="redirect_uris"') == 1
    assert 'name="new_redirect_uris" value=""' in html  # it is on the list: nothing to correct
    # Typed and Next: the step stays with the message once; the next Next goes on.
    stopped = step(admin, 3, new_redirect_uris=uri)
    assert stopped.status_code == 422 and shown_step(stopped) == 3 and "is already in the list" in text(stopped)
    assert shown_step(step(admin, 3)) == 4


def test_unticking_openid_warns_but_is_allowed(admin):
    warning = "Without <code>openid</code> this client is plain OAuth 2.0: it gets no ID token"
    kept = text(step(admin, 3, "add:scopes", new_scopes="invoices:read"))
    # With openid ticked the warning waits, hidden, for the box to be unticked (CSS shows it then).
    assert '<div class="alert alert-warning openid-warning while-unticked" id="openid-warning">' in kept
    without = step(admin, 3, "add:scopes", scopes=["profile", "email"], new_scopes="invoices:read")
    assert '<div class="alert alert-warning openid-warning" id="openid-warning">' in text(without)
    assert warning in text(without)
    onwards = step(admin, 3, scopes=["profile", "email"])
    assert onwards.status_code == 200 and shown_step(onwards) == 4
    review = step(admin, 4, scopes=["profile", "email"])
    assert shown_step(review) == 5 and warning in text(review)
    assert warning not in text(step(admin, 4))
    created = step(admin, 5, "save", scopes=["profile", "email"])
    assert created.status_code == 303 and client_service.get_client("shop").scopes == ["profile", "email"]


M2M = {"grant_types": ["client_credentials"], "redirect_uris": [], "scopes": ["invoices:read"]}
SIGN_IN_SETTINGS = (
    "Refresh token idle timeout",
    "Refresh token maximum lifetime",
    "Require PKCE",
    "Ask users for consent",
)


def test_the_token_settings_of_a_machine_to_machine_client_are_only_those_that_apply(admin):
    web = text(step(admin, 3))
    m2m = step(admin, 3, **M2M)
    assert shown_step(m2m) == 4
    for label in SIGN_IN_SETTINGS:
        assert label in web and label not in text(m2m)
    assert "Access token lifetime" in text(m2m) and "Signing algorithm" in text(m2m)
    # Carried as they are, so nothing changes behind the admin's back.
    assert '<input type="hidden" name="refresh_token_lifetime" value="2592000">' in text(m2m)
    assert '<input type="hidden" name="require_pkce" value="1">' in text(m2m)
    # A rule broken by a setting that is left out still shows it, with its error, to be corrected.
    broken = step(admin, 4, **M2M, access_token_lifetime="86400", refresh_token_lifetime="3600")
    assert broken.status_code == 422 and "Refresh token idle timeout" in text(broken)
    assert "Require PKCE" not in text(broken)


def test_the_review_of_a_machine_to_machine_client_leaves_out_what_cannot_apply(admin):
    review = text(step(admin, 4, **M2M))
    web = text(step(admin, 4))
    for label in ("Refresh token lifetime", "Refresh token maximum lifetime", "PKCE", "Consent"):
        assert f"<dt>{label}</dt>" in web and f"<dt>{label}</dt>" not in review
    assert "<dt>Access token lifetime</dt>" in review
    created = step(admin, 5, "save", **M2M)
    assert created.status_code == 303 and client_service.get_client("shop").grant_types == ["client_credentials"]


@pytest.mark.parametrize(
    ("changes", "field_error"),
    [
        ({"access_token_lifetime": "30"}, "Access token lifetime must be between 60 and 86400 seconds"),
        ({"access_token_lifetime": "soon"}, "Access token lifetime must be a whole number of seconds."),
        ({"refresh_token_lifetime": "99999999"}, "Refresh token lifetime must be between 300 and 7776000"),
        ({"access_token_lifetime": "7200", "refresh_token_lifetime": "3600"}, "must be at least the access token"),
        (
            {"refresh_token_lifetime": "7200", "refresh_token_max_lifetime": "3600"},
            "Refresh token maximum lifetime must be at least the refresh token idle timeout.",
        ),
        ({"refresh_token_max_lifetime": "99999999"}, "Refresh token maximum lifetime must be between 300 and 31536000"),
        ({"token_endpoint_auth_methods": ["none"], "require_pkce": "0"}, "Public clients must use PKCE."),
        ({"token_format": "xml"}, "Token format must be one of jwt, opaque."),
        ({"signing_alg": "HS256"}, "Signing algorithm must be one of RS256, ES256, EdDSA."),
    ],
)
def test_step_4_rules_are_the_services(admin, changes, field_error):
    response = step(admin, 4, **changes)
    assert response.status_code == 422 and shown_step(response) == 4
    assert field_error in text(response)


def test_the_review_shows_everything_and_nothing_is_written_before_create(admin):
    for number in (1, 2, 3, 4):
        response = step(admin, number)
        assert response.status_code == 200 and shown_step(response) == number + 1
    html = text(response)
    assert "Review" in html and "Create client" in html and "shown <strong>once</strong>" in html
    assert "https://shop.example.com/callback" in html and "1 hour" in html and "30 days" in html
    assert count_clients() == 1


def test_create_stores_the_client_and_shows_the_secret_once(admin):
    response = step(admin, 5, "save", require_consent="1", token_format="opaque", signing_alg="ES256")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/clients/shop"
    client = client_service.get_client("shop")
    assert client.name == "Shop" and client.redirect_uris == ["https://shop.example.com/callback"]
    assert client.require_consent is True and client.token_format == "opaque" and client.signing_alg == "ES256"
    page = admin.get("/admin/clients/shop")
    secret = re.search(r'id="client-secret" class="secret-value">([^<]+)<', text(page)).group(1)
    assert secret.startswith("agcs_") and client.secret_hash == sha256_hex(secret)
    assert "shown only this once" in text(page) and 'data-copy="client-secret"' in text(page)
    assert secret not in text(admin.get("/admin/clients/shop"))


def test_create_of_a_public_client_has_no_secret(admin):
    response = step(admin, 5, "save", token_endpoint_auth_methods=["none"])
    assert response.status_code == 303
    page = admin.get(response.headers["Location"])
    assert "client-secret" not in text(page) and "None — public client" in text(page)


def test_a_rule_broken_at_create_sends_the_admin_to_its_step(admin, make_client):
    make_client(client_id="shop")  # taken while the wizard was open
    response = step(admin, 5, "save")
    assert response.status_code == 422 and shown_step(response) == 1
    assert "&#39;shop&#39; is already taken" in text(response)


def test_wizard_fragments_are_blocks_of_the_same_page(admin):
    headers = {"HX-Request": "true", "HX-Target": "wizard"}
    response = step(admin, 1, headers=headers)
    assert text(response).lstrip().startswith('<div id="wizard"') and "<html" not in text(response)
    assert shown_step(response) == 2
    check = post(admin, NEW, {**draft(client_id="authgate-console"), "step": "1", "action": "check"},
                 headers={"HX-Request": "true", "HX-Target": "client_id_check"})  # fmt: skip
    assert text(check).strip().startswith('<div id="client_id_check">')
    assert "already taken" in text(check) and "Name" not in text(check)
    free = post(admin, NEW, {**draft(client_id="free-id", name=""), "step": "1", "action": "check"},
                headers={"HX-Request": "true", "HX-Target": "client_id_check"})  # fmt: skip
    assert "free-id is available" in text(free)


def test_a_successful_create_over_htmx_loads_the_client_page(admin):
    response = step(admin, 5, "save", headers={"HX-Request": "true", "HX-Target": "wizard"})
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/admin/clients/shop"


# --- editing ---------------------------------------------------------------------------


def test_edit_goes_through_the_same_steps_with_the_client_id_fixed(admin, make_client):
    make_client(client_id="shop", name="Shop", redirect_uris=["https://shop.example.com/callback"])
    page = admin.get("/admin/clients/shop/edit")
    assert page.status_code == 200 and "Edit Shop" in text(page)
    assert 'name="client_id"' not in text(page) and "Fixed: applications already send it" in text(page)
    url = "/admin/clients/shop/edit"
    response = step(admin, 5, "save", url=url, client_id="renamed", name="Shop 2", access_token_lifetime="600")
    assert response.status_code == 303
    db.session.expire_all()
    client = client_service.get_client("shop")
    assert client.name == "Shop 2" and client.access_token_lifetime == 600
    assert client_service.find_client("renamed") is None


def test_editing_a_public_client_into_a_confidential_one_shows_its_new_secret(admin, make_client):
    make_client(client_id="spa", token_endpoint_auth_methods=["none"])
    response = step(admin, 5, "save", url="/admin/clients/spa/edit", client_id="spa")
    assert response.status_code == 303
    assert "shown only this once" in text(admin.get("/admin/clients/spa"))


# --- secret and deletion ---------------------------------------------------------------


def test_rotate_secret_asks_then_shows_the_new_one_once(admin, make_client):
    _, old = make_client(client_id="shop")
    page = admin.get("/admin/clients/shop/rotate-secret")
    assert page.status_code == 200 and "stops working <strong>at once</strong>" in text(page)
    response = post(admin, "/admin/clients/shop/rotate-secret")
    assert response.status_code == 303
    shown = admin.get("/admin/clients/shop")
    new = re.search(r'id="client-secret" class="secret-value">([^<]+)<', text(shown)).group(1)
    db.session.expire_all()
    client = client_service.get_client("shop")
    assert new != old and client_service.verify_secret(client, new) and not client_service.verify_secret(client, old)


def test_a_public_client_has_no_secret_to_rotate(admin, make_client):
    make_client(client_id="spa", token_endpoint_auth_methods=["none"])
    response = post(admin, "/admin/clients/spa/rotate-secret")
    assert response.status_code == 422 and "does not authenticate with a client secret" in text(response)


def test_delete_says_what_goes_with_the_client(admin, make_client, make_role, make_user):
    make_client(client_id="shop")
    make_role("shop", "ROLE_A")
    make_role("shop", "ROLE_B")
    make_user("shop", "alice")
    page = admin.get("/admin/clients/shop/delete")
    assert page.status_code == 200
    assert "<strong>1 user</strong>" in text(page) and "<strong>2 roles</strong>" in text(page)
    wrong = post(admin, "/admin/clients/shop/delete", {"confirm": "sho"})
    assert wrong.status_code == 422 and "Type shop to confirm." in text(wrong)
    assert client_service.find_client("shop") is not None
    response = post(admin, "/admin/clients/shop/delete", {"confirm": "shop"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/clients"
    assert "with its 1 users and 2 roles" in text(admin.get("/admin/clients"))
    db.session.expire_all()
    assert client_service.find_client("shop") is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Role).where(Role.name.like("ROLE_%"))) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1  # only the console admin


def test_the_console_client_cannot_be_deleted(admin):
    page = admin.get("/admin/clients/authgate-console/delete")
    assert "cannot be deleted" in text(page) and 'name="confirm"' not in text(page)
    response = post(admin, "/admin/clients/authgate-console/delete", {"confirm": "authgate-console"})
    assert response.status_code == 409
    assert client_service.find_client("authgate-console") is not None


def test_detail_page_tells_an_app_developer_what_to_configure(admin, make_client):
    make_client(client_id="shop", redirect_uris=["https://shop.example.com/callback"])
    html = text(admin.get("/admin/clients/shop"))
    assert "http://localhost/.well-known/openid-configuration" in html
    assert "Connect your application" in html and "redirect_uri=https%3A//shop.example.com/callback" in html


def test_a_machine_to_machine_client_page_shows_only_what_applies(admin, make_client, make_user):
    make_client(client_id="nightly", name="Nightly", **M2M)
    make_client(client_id="shop", redirect_uris=["https://shop.example.com/callback"])
    web = text(admin.get("/admin/clients/shop"))
    m2m = text(admin.get("/admin/clients/nightly"))
    for shown in (
        "<dt>Redirect URIs</dt>",
        "<dt>Refresh token</dt>",
        "<dt>PKCE</dt>",
        "<dt>Consent</dt>",
        "+ Add a user",
        "Sign-in options",
        "+ Add Google, GitHub or OpenID Connect",
        ">Identity providers</a>",
    ):
        assert shown in web and shown not in m2m
    assert "No one signs in to a machine-to-machine client" in m2m
    assert "grant_type=client_credentials" in m2m and "<dt>Access token</dt>" in m2m
    assert "It still has" not in m2m
    # Users from when people signed in to it are not hidden away.
    make_user("nightly", "leftover")
    assert "It still has <a" in text(admin.get("/admin/clients/nightly"))
