"""Helpers shared by the integration tests: the test tenant, the hosted sign-in and the admin console.

Fixtures live in conftest.py; this module holds the plain functions and constants that test
modules import.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlencode

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import g

from tests.helpers import Browser, forms, query_of

REDIRECT_URI = "http://127.0.0.1:8765/cb"
LOGOUT_URI = "http://127.0.0.1:8765/bye"
PASSWORD = "correct horse battery"
SCOPE = "openid profile email roles offline_access"


@dataclass
class Tenant:
    url: str
    client_id: str
    secret: str | None
    user: object
    private_key: object = None

    def browser(self) -> Browser:
        return Browser(self.url)

    def session(self, auth_method: str = "client_secret_basic", **kwargs) -> OAuth2Session:
        """A relying party built with Authlib's client, as any developer would."""
        secret = self.private_key if auth_method == "private_key_jwt" else self.secret
        session = OAuth2Session(
            self.client_id,
            secret,
            scope=kwargs.pop("scope", SCOPE),
            redirect_uri=REDIRECT_URI,
            token_endpoint_auth_method=auth_method,
            code_challenge_method="S256",
            **kwargs,
        )
        if auth_method == "private_key_jwt":
            session.register_client_auth_method(PrivateKeyJWT(f"{self.url}/oauth2/token", alg="ES256"))
        return session


# --- the authorization code flow -----------------------------------------------------------

VERIFIER = "v" * 50
CHALLENGE = create_s256_code_challenge(VERIFIER)


def authorize_params(client_id="web", **overrides):
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": "xyz",
        "nonce": generate_token(12),
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return [(k, v) for k, v in params.items() if v is not None]


def exchange(tenant, code, auth="basic", **overrides):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": VERIFIER}
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    kwargs = {}
    if auth == "basic":
        kwargs["auth"] = (tenant.client_id, tenant.secret)
    elif isinstance(auth, tuple):
        kwargs["auth"] = auth
    return requests.post(f"{tenant.url}/oauth2/token", data=data, timeout=5, **kwargs)


def start(tenant, browser=None, **overrides):
    browser = browser or tenant.browser()
    return browser, browser.get("/oauth2/authorize?" + urlencode(authorize_params(tenant.client_id, **overrides)))


def run_code_flow(tenant, session, nonce="n-0S6_WzA2Mj", extra=None):
    """Sign in through the hosted pages; return (token, final redirect URL)."""
    verifier = generate_token(48)
    url, state = session.create_authorization_url(
        f"{tenant.url}/oauth2/authorize", code_verifier=verifier, nonce=nonce, **(extra or {})
    )
    browser = tenant.browser()
    page = browser.get(url)
    assert page.status_code == 200 and "Sign in" in page.text
    landed = browser.login(page, tenant.user.username, PASSWORD)
    assert landed.status_code == 302, landed.text[:300]
    location = landed.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    params = query_of(location)
    assert params["state"] == state and params["iss"] == tenant.url
    token = session.fetch_token(f"{tenant.url}/oauth2/token", authorization_response=location, code_verifier=verifier)
    return token, browser


# --- the admin console -----------------------------------------------------------------------

ADMIN_PASSWORD = "console admin password"
ISSUER = "http://localhost"


def set_up_console(app, runner):
    """Run `flask init` with the test client's address as the issuer (so the callback URI matches)."""
    app.config["AUTHGATE_ISSUER"] = ISSUER
    result = runner.invoke(args=["init", "--admin-password", ADMIN_PASSWORD])
    assert result.exit_code == 0, result.output

    # The test client runs each request inside the test's app context, so `g` would carry
    # Flask-Login's user and Flask-WTF's token from one request (or test client) to the next;
    # a real server starts each request with an empty `g`.
    @app.before_request
    def fresh_g():
        for name in list(vars(g)):
            delattr(g, name)


def csrf_token_of(response) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', response.get_data(as_text=True)).group(1)


def sign_in(client, username="admin", password=ADMIN_PASSWORD, next_path=None):
    """Go through /admin/login, the hosted sign-in page and /admin/callback; return the final response."""
    start = "/admin/login" + (f"?next={next_path}" if next_path else "")
    page = client.get(start, follow_redirects=True)
    assert page.request.path == "/login", page.request.path
    (form,) = forms(page.get_data(as_text=True))
    response = client.post("/login", data={**form.fields, "username": username, "password": password})
    response = (
        client.get(response.headers["Location"], follow_redirects=True) if response.status_code == 303 else response
    )
    if response.status_code == 200 and 'name="csrf-token"' in response.get_data(as_text=True):
        client.csrf = csrf_token_of(response)
    return response


def post(client, url, data=None, **kwargs):
    """POST a console form with the session's CSRF token."""
    return client.post(url, data={"csrf_token": client.csrf, **(data or {})}, **kwargs)


def text(response) -> str:
    return response.get_data(as_text=True)


def introspect(tenant, token: str, auth=None) -> dict:
    """Introspect a token as the tenant's client (or as `auth`); the endpoint must answer 200."""
    response = requests.post(
        f"{tenant.url}/oauth2/introspect", data={"token": token}, auth=auth or (tenant.client_id, tenant.secret),
        timeout=10,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def userinfo_status(tenant, access_token: str) -> int:
    return requests.get(
        f"{tenant.url}/oauth2/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    ).status_code
