"""Console sign-in through the hosted login (code + PKCE for authgate-console), its guard and sign-out.

The console helpers (set_up_console, sign_in, post) live in tests/integration/helpers.py.
"""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from app.extensions import db
from app.models import AuthorizationCode, BrowserSession
from app.oauth.inprocess import redeem_code
from app.services import clients as client_service
from app.services import roles as role_service
from app.services import tokens
from app.services import users as user_service
from tests.integration.helpers import ISSUER, csrf_token_of, post, set_up_console, sign_in, text


@pytest.fixture
def console(app, runner):
    set_up_console(app, runner)
    return app


# --- the guard -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", "/admin/clients", "/admin/clients/new", "/admin/keys", "/admin/users"])
def test_every_console_page_needs_a_signed_in_admin(console, client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")


def test_an_htmx_request_is_told_to_load_the_sign_in_page(console, client):
    response = client.get("/admin/clients?q=x", headers={"HX-Request": "true", "HX-Target": "results"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/admin/login"


def test_login_starts_a_pkce_authorization_request_for_the_console_client(console, client):
    response = client.get("/admin/login")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/oauth2/authorize"
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["client_id"] == "authgate-console"
    assert params["response_type"] == "code"
    assert params["redirect_uri"] == f"{ISSUER}/admin/callback"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    with client.session_transaction() as session:
        pending = session["admin_signin"]
    # The verifier stays in the (signed) session; only its S256 hash travels.
    assert create_s256_code_challenge(pending["verifier"]) == params["code_challenge"]
    assert pending["state"] == params["state"]


def test_admin_signs_in_through_the_hosted_page_and_lands_on_the_dashboard(console, client):
    response = sign_in(client)
    assert response.status_code == 200
    assert response.request.path == "/admin/"
    assert "Dashboard" in text(response) and "Console Admin" in text(response)
    db.session.expire_all()
    live = db.session.scalars(sa.select(BrowserSession).where(BrowserSession.ended_at.is_(None))).all()
    assert len(live) == 1
    code = db.session.scalar(sa.select(AuthorizationCode))
    assert code.used_at is not None  # redeemed in-process, once


def test_sign_in_returns_to_the_page_asked_for(console, client):
    response = sign_in(client, next_path="/admin/keys")
    assert response.request.path == "/admin/keys"


@pytest.mark.parametrize("wanted", ["//evil.example/admin", "https://evil.example/admin", "/oauth2/token", "/admin\\x"])
def test_sign_in_never_returns_to_another_site(console, client, wanted):
    response = sign_in(client, next_path=wanted)
    assert response.request.path == "/admin/"


def test_a_console_user_without_the_admin_role_gets_a_clear_403_not_a_loop(console, client):
    user_service.create_user("authgate-console", "viewer", password="viewer password")
    response = sign_in(client, "viewer", "viewer password")
    assert response.status_code == 403
    assert "Not a console administrator" in text(response) and "ROLE_AUTHGATE_ADMIN" in text(response)
    # The console sign-in was ended, so trying again asks who is signing in.
    again = client.get("/admin/", follow_redirects=True)
    assert again.request.path == "/login"
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).where(BrowserSession.ended_at.is_(None))) == 0


def test_a_user_of_another_client_cannot_sign_in_to_the_console(console, client, make_client, make_role, make_user):
    make_client(client_id="shop")
    make_role("shop", "ROLE_AUTHGATE_ADMIN")
    make_user("shop", "mallory", password="mallory password", roles=["ROLE_AUTHGATE_ADMIN"])
    response = sign_in(client, "mallory", "mallory password")
    assert response.status_code == 200 and response.request.path == "/login"
    assert "Invalid username or password." in text(response)


def test_a_disabled_admin_or_one_without_the_role_is_signed_out_at_the_next_request(console, client):
    sign_in(client)
    assert client.get("/admin/").status_code == 200
    role = role_service.get_role(client_service.get_client("authgate-console"), "ROLE_AUTHGATE_ADMIN")
    user_service.remove_role("authgate-console", "admin", role.name)
    response = client.get("/admin/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")


def test_signing_out_of_all_applications_signs_out_of_the_console(console, client):
    sign_in(client)
    page = client.get("/logout")
    client.post("/logout", data={"csrf_token": csrf_token_of(page)})
    assert client.get("/admin/").status_code == 302


def test_console_logout_ends_the_console_session(console, client):
    sign_in(client)
    response = post(client, "/admin/logout")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/signed-out"
    assert "You are signed out" in text(client.get("/admin/signed-out"))
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).where(BrowserSession.ended_at.is_(None))) == 0
    # Signing in again asks for the password: the hosted sign-in to the console ended too.
    assert client.get("/admin/", follow_redirects=True).request.path == "/login"


def test_logout_needs_the_csrf_token(console, client):
    sign_in(client)
    response = client.post("/admin/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    "query",
    ["state=wrong&code=x", "code=x", "state={state}&error=access_denied", "state={state}&code=forged"],
    ids=["wrong-state", "no-state", "denied", "forged-code"],
)
def test_a_bad_callback_is_a_page_that_says_so(console, client, query):
    client.get("/admin/login")
    with client.session_transaction() as session:
        state = session["admin_signin"]["state"]
    response = client.get("/admin/callback?" + query.format(state=state))
    assert response.status_code == 400
    assert "Sign in to the console" in text(response)
    assert client.get("/admin/").status_code == 302


def test_a_console_sign_in_started_elsewhere_moves_to_the_issuer_address_once(console, client):
    response = client.get("/admin/login", base_url="http://127.0.0.1:5000")
    assert response.status_code == 302
    assert response.headers["Location"] == f"{ISSUER}/admin/login?hop=1"
    # Behind a proxy that hides the public address, the second request must not bounce again.
    response = client.get("/admin/login?hop=1", base_url="http://127.0.0.1:5000")
    assert urlsplit(response.headers["Location"]).path == "/oauth2/authorize"


def test_console_without_init_says_what_to_run(app, client):
    app.config["AUTHGATE_ISSUER"] = ISSUER
    response = client.get("/admin/login")
    assert response.status_code == 503 and "flask --app wsgi init" in text(response)


def test_console_pages_load_no_inline_script(console, client):
    response = sign_in(client)
    html = text(response)
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'self' covers scripts
    assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", html) == []
    assert " hx-on" not in html


# --- the in-process code redemption (redeem_code) -------------------------------


def _code_for_console(client):
    sign_in(client)
    console_client = client_service.get_client("authgate-console")
    verifier = generate_token(48)
    user = user_service.get_user(console_client, "admin")
    code = tokens.new_code()
    tokens.store_code(
        code, console_client, user, f"{ISSUER}/admin/callback", "openid", None,
        create_s256_code_challenge(verifier), "S256", None,
    )  # fmt: skip
    return console_client, code, verifier


def test_redeem_code_checks_pkce_and_redirect_uri_and_is_single_use(console, client):
    console_client, code, verifier = _code_for_console(client)
    callback = f"{ISSUER}/admin/callback"
    assert redeem_code(code, console_client, callback, "wrong verifier") is None
    assert redeem_code(code, console_client, "http://localhost/elsewhere", verifier) is None
    other, _ = client_service.create_client(client_id="shop", name="Shop", redirect_uris=[callback])
    assert redeem_code(code, other, callback, verifier) is None
    # The failed tries did not use the code up; the right one does, once.
    assert redeem_code(code, console_client, callback, verifier) is not None
    assert redeem_code(code, console_client, callback, verifier) is None
