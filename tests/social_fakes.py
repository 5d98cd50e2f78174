"""Fake Google (OpenID Connect) and fake GitHub (OAuth 2 + REST) as real HTTP servers on 127.0.0.1, and fixtures.

Each fake's authorize endpoint approves at once by redirecting back with a code; a test changes
what the fake does next through its attributes (deny, delay, the account, claims to tamper with).
The fixtures that start them are in tests/social_fixtures.py.
"""

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin

import requests
from authlib.common.security import generate_token
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.helpers import Browser, query_of, verify_jwt
from tests.integration.helpers import REDIRECT_URI, Tenant

UPSTREAM_CLIENT_ID = "authgate-at-upstream"
UPSTREAM_SECRET = "upstream-secret-0123456789"


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _json(data, status=200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _redirect(uri: str, params: dict) -> Response:
    separator = "&" if "?" in uri else "?"
    return Response(status=302, headers={"Location": uri + separator + urlencode(params)})


class FakeServer:
    """A WSGI app served by Werkzeug in a thread; subclasses list their `routes` and define the handlers."""

    routes: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def __init__(self):
        self.url_map = Map([Rule(path, endpoint=endpoint, methods=methods) for path, endpoint, methods in self.routes])
        self.clients = {UPSTREAM_CLIENT_ID: UPSTREAM_SECRET}
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        # Every request, as (path, query and form parameters), for tests to inspect.
        self.seen: list[tuple[str, dict]] = []
        self.deny = False
        # Seconds the token endpoint waits before answering.
        self.delay = 0.0
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, _ = self.url_map.bind_to_environ(environ).match()
        except HTTPException as error:
            return error(environ, start_response)
        self.seen.append((request.path, {**request.args.to_dict(), **request.form.to_dict()}))
        return getattr(self, endpoint)(request)(environ, start_response)

    def requests_to(self, path: str) -> list[dict]:
        return [params for seen_path, params in self.seen if seen_path == path]

    def _approve(self, request: Request, **extra) -> Response:
        """The authorize endpoint: check the client, then send the browser straight back."""
        params = request.args
        redirect_uri = params.get("redirect_uri")
        if params.get("client_id") not in self.clients or not redirect_uri:
            return Response("unknown client", status=400)
        if self.deny:
            return _redirect(redirect_uri, {"error": "access_denied", "state": params.get("state", "")})
        code = generate_token(24)
        self.codes[code] = {
            "client_id": params["client_id"],
            "redirect_uri": redirect_uri,
            "challenge": params.get("code_challenge"),
            **extra,
        }
        return _redirect(redirect_uri, {"code": code, "state": params.get("state", "")})

    def _redeem(self, request: Request, client_id: str | None, secret: str | None) -> tuple[dict | None, str | None]:
        """Check a token request; return (the code's record, None) or (None, error)."""
        if self.delay:
            time.sleep(self.delay)
        form = request.form
        if client_id not in self.clients or self.clients[client_id] != secret:
            return None, "invalid_client"
        record = self.codes.pop(form.get("code", ""), None)
        if record is None or record["client_id"] != client_id or record["redirect_uri"] != form.get("redirect_uri"):
            return None, "invalid_grant"
        if record["challenge"] and _s256(form.get("code_verifier", "")) != record["challenge"]:
            return None, "invalid_grant"
        return record, None

    def _bearer(self, request: Request) -> dict | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        return self.tokens.get(value)


class FakeOIDC(FakeServer):
    """Google's side of OpenID Connect: discovery, JWKS, authorize, token (a signed ID token), userinfo."""

    routes = (
        ("/.well-known/openid-configuration", "discovery", ("GET",)),
        ("/jwks", "jwks", ("GET",)),
        ("/authorize", "authorize", ("GET",)),
        ("/token", "token", ("POST",)),
        ("/userinfo", "userinfo", ("GET", "POST")),
    )

    def __init__(self):
        super().__init__()
        self.key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
        self.account = {
            "sub": "google-1001",
            "email": "alice@example.com",
            "email_verified": True,
            "given_name": "Alice",
            "family_name": "Liddell",
            "name": "Alice Liddell",
        }
        # Claims to put into (or, with None, remove from) the next ID tokens: iss, aud, nonce, exp...
        self.id_token_claims: dict = {}
        # Sign ID tokens with a key that is not in the JWKS (but claims the published kid).
        self.forge_signature = False
        # Leave the email out of the ID token, so it must come from userinfo.
        self.email_in_userinfo_only = False

    def discovery(self, request):
        return _json(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "userinfo_endpoint": f"{self.url}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    def jwks(self, request):
        return _json({"keys": [self.key.as_dict(private=False)]})

    def authorize(self, request):
        if request.args.get("response_type") != "code" or "openid" not in request.args.get("scope", "").split():
            return Response("bad request", status=400)
        return self._approve(request, nonce=request.args.get("nonce"))

    def token(self, request):
        if request.authorization and request.authorization.type == "basic":
            client_id, secret = request.authorization.username, request.authorization.password
        else:
            client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        record, error = self._redeem(request, client_id, secret)
        if error:
            return _json({"error": error}, status=400 if error != "invalid_client" else 401)
        now = int(time.time())
        claims = {"iss": self.url, "aud": client_id, "iat": now, "exp": now + 300, "nonce": record["nonce"]}
        claims.update(self.account)
        if self.email_in_userinfo_only:
            claims.pop("email", None)
            claims.pop("email_verified", None)
        claims.update(self.id_token_claims)
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.key
        if self.forge_signature:
            key = RSAKey.generate_key(2048, parameters={"kid": self.key.kid}, private=True)
        id_token = jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, key)
        access_token = generate_token(32)
        self.tokens[access_token] = dict(self.account)
        return _json({"access_token": access_token, "token_type": "Bearer", "expires_in": 3600, "id_token": id_token})

    def userinfo(self, request):
        account = self._bearer(request)
        if account is None:
            return _json({"error": "invalid_token"}, status=401)
        return _json(account)


class FakeGitHub(FakeServer):
    """GitHub's OAuth 2 web flow and the two REST calls AuthGate makes, under a GitHub Enterprise style /api/v3."""

    routes = (
        ("/login/oauth/authorize", "authorize", ("GET",)),
        ("/login/oauth/access_token", "access_token", ("POST",)),
        ("/api/v3/user", "user", ("GET",)),
        ("/api/v3/user/emails", "user_emails", ("GET",)),
    )

    def __init__(self):
        super().__init__()
        self.api_url = f"{self.url}/api/v3"
        self.account = {"id": 4242, "login": "alice-gh", "name": "Alice Liddell", "email": None}
        self.emails = [
            {"email": "alice.old@example.com", "primary": False, "verified": True, "visibility": None},
            {"email": "alice@example.com", "primary": True, "verified": True, "visibility": "public"},
        ]

    def authorize(self, request):
        return self._approve(request)

    def access_token(self, request):
        # GitHub takes the client credentials in the form body.
        _, error = self._redeem(request, request.form.get("client_id"), request.form.get("client_secret"))
        if error:
            # GitHub answers token errors with 200 and an error object.
            return _json(
                {"error": "bad_verification_code" if error == "invalid_grant" else "incorrect_client_credentials"}
            )
        token = "gho_" + secrets.token_hex(16)
        self.tokens[token] = {"account": dict(self.account), "emails": list(self.emails)}
        return _json({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"})

    def user(self, request):
        found = self._bearer(request)
        return _json(found["account"]) if found else _json({"message": "Bad credentials"}, status=401)

    def user_emails(self, request):
        found = self._bearer(request)
        return _json(found["emails"]) if found else _json({"message": "Bad credentials"}, status=401)


# --- driving a sign-in ------------------------------------------------------------------


@dataclass
class Flight:
    """One relying-party sign-in in progress: its browser, Authlib session and PKCE verifier."""

    tenant: Tenant
    browser: Browser
    session: object
    verifier: str
    state: str
    nonce: str
    page: requests.Response = None
    history: list = field(default_factory=list)

    @property
    def landed_at_client(self) -> bool:
        return self.page.status_code == 302 and self.page.headers["Location"].startswith(REDIRECT_URI)

    def exchange(self) -> dict:
        """Redeem the code at the token endpoint with Authlib, as a relying party does."""
        assert self.landed_at_client, (self.page.status_code, self.page.text[:500])
        location = self.page.headers["Location"]
        assert query_of(location)["state"] == self.state
        return self.session.fetch_token(
            f"{self.tenant.url}/oauth2/token", authorization_response=location, code_verifier=self.verifier
        )

    def id_token(self) -> dict:
        """Exchange the code and verify the ID token against the published JWKS."""
        claims = verify_jwt(self.exchange()["id_token"], self.tenant.url, self.tenant.client_id)
        assert claims["nonce"] == self.nonce
        return claims


def button_href(page: requests.Response, slug: str) -> str:
    """The "Continue with ..." link of a provider on the login page."""
    match = re.search(r'href="([^"]*/login/' + re.escape(slug) + r'\?rid=[^"]*)"', page.text)
    assert match, f"no button for {slug}: {page.text[:800]}"
    return match.group(1).replace("&amp;", "&")


def through_upstream(browser: Browser, response: requests.Response, fakes=()) -> requests.Response:
    """Follow redirects out to a fake provider and back until the browser rests (or leaves for the client)."""
    fake_urls = tuple(fake.url for fake in fakes)
    for _ in range(10):
        if not response.is_redirect:
            return response
        location = urljoin(response.url, response.headers["Location"])
        if not location.startswith(fake_urls):
            return response
        response = browser.follow(browser.http.get(location, allow_redirects=False))
    raise AssertionError("redirect loop")


def start_sign_in(tenant: Tenant, browser: Browser | None = None, **session_kwargs) -> Flight:
    """Open the client's authorization URL in a browser: the login page (or a redirect, if signed in)."""
    session = tenant.session(**session_kwargs)
    verifier, nonce = generate_token(48), generate_token(16)
    url, state = session.create_authorization_url(f"{tenant.url}/oauth2/authorize", code_verifier=verifier, nonce=nonce)
    browser = browser or tenant.browser()
    flight = Flight(tenant, browser, session, verifier, state, nonce)
    flight.page = browser.get(url)
    return flight


def social_sign_in(tenant: Tenant, slug: str, fakes=(), browser: Browser | None = None, **session_kwargs) -> Flight:
    """Start at the client, click "Continue with <slug>", go through the fake provider and come back."""
    flight = start_sign_in(tenant, browser, **session_kwargs)
    assert flight.page.status_code == 200, flight.page.text[:500]
    flight.history.append(flight.page)
    flight.page = through_upstream(flight.browser, flight.browser.get(button_href(flight.page, slug)), fakes)
    return flight
