"""Test helpers: the app under test, a scripted browser over HTTP, HTML form parsing, independent token checks."""

import base64
import hashlib
import os
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import make_server

from app import create_app
from app.config import normalise_database_url

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
PG_URL = os.environ.get("AUTHGATE_TEST_DATABASE_URL")


REDIS_URL = os.environ.get("AUTHGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_settings() -> dict:
    """Settings that put an app's brute-force counters on the test Redis, under a prefix no other app uses.

    Redis is one of the components the suite runs against (`.ci/run` starts one): unreachable fails the test.
    """
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        raise AssertionError(f"the test Redis at {REDIS_URL} does not answer ({error}); start one") from None
    return {"AUTHGATE_REDIS_URL": REDIS_URL, "AUTHGATE_REDIS_PREFIX": f"authgate-test-{os.urandom(8).hex()}"}


def make_app(database_url: str, **overrides):
    config = {
        "TESTING": True,
        "AUTHGATE_ENV": "testing",
        "SECRET_KEY": TEST_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "AUTHGATE_BCRYPT_ROUNDS": 4,
        "AUTHGATE_ISSUER": "http://localhost:5000",
        "AUTHGATE_KEY_REFRESH_SECONDS": 0,
        # No housekeeping thread: tests purge and rotate explicitly, so they stay deterministic.
        "AUTHGATE_MAINTENANCE_SECONDS": 0,
    }
    config.update(overrides)
    return create_app(config)


@dataclass
class Form:
    action: str
    method: str
    fields: dict = field(default_factory=dict)
    buttons: list = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(Form(attrs.get("action", ""), attrs.get("method", "get").lower()))
        elif self.forms and tag == "input" and attrs.get("name"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.forms[-1].fields[attrs["name"]] = attrs.get("value", "")
        elif self.forms and tag == "button" and attrs.get("name"):
            self.forms[-1].buttons.append((attrs["name"], attrs.get("value", "")))


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


class Browser:
    """Follows redirects within the server, keeps cookies, fills and posts forms."""

    def __init__(self, base_url: str):
        self.base = base_url
        self.http = requests.Session()

    def _inside(self, url: str) -> bool:
        return urljoin(self.base, url).startswith(self.base)

    def follow(self, response: requests.Response) -> requests.Response:
        """Follow redirects while they stay on the server; stop at the first one that leaves."""
        for _ in range(20):
            if not response.is_redirect or not self._inside(response.headers["Location"]):
                return response
            response = self.http.get(urljoin(response.url, response.headers["Location"]), allow_redirects=False)
        raise AssertionError("redirect loop")

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.follow(self.http.get(urljoin(self.base, url), allow_redirects=False, **kwargs))

    def submit(self, page: requests.Response, data: dict | None = None, index: int = 0) -> requests.Response:
        """Post the page's form with its hidden fields plus `data`."""
        form = forms(page.text)[index]
        payload = {**form.fields, **(data or {})}
        url = urljoin(page.url, form.action or page.url)
        return self.follow(self.http.post(url, data=payload, allow_redirects=False))

    def login(self, page: requests.Response, username: str, password: str) -> requests.Response:
        assert 'name="username"' in page.text, page.text[:500]
        return self.submit(page, {"username": username, "password": password})


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class LiveServer:
    """The app served by Werkzeug in a thread, at a real port on 127.0.0.1."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        app.config["AUTHGATE_ISSUER"] = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


def jwks_of(base_url: str) -> KeySet:
    return KeySet.import_key_set(requests.get(f"{base_url}/oauth2/jwks", timeout=5).json())


def verify_jwt(token: str, base_url: str, audience: str, typ: str | None = None) -> dict:
    """Verify a token the way a relying party would: signature against the published JWKS, iss, aud, exp."""
    decoded = jwt.decode(token, jwks_of(base_url), algorithms=["RS256", "ES256", "EdDSA"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": base_url},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(decoded.claims)
    if typ:
        assert decoded.header["typ"] == typ
    assert decoded.header["kid"]
    return decoded.claims


def at_hash(access_token: str, alg: str) -> str:
    """OIDC at_hash computed here, independently of the server's helper."""
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
