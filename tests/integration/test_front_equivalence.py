"""The front (app/oauth/front.py) answers every request exactly as the plain Flask path does.

Each shape below, valid or hostile, goes once through an app with the front and once through an
app built without it (AUTHGATE_FRONT=0) on the same database. Both answers must have the same
status, the same headers in the same order (the request id only checked for its form) and the
same body, tokens compared by their JOSE header and claims (ids and times differ from one issue
to the next). Each shape also says which path the front must choose: `FRONT` shapes are answered
by it, `FLASK` shapes are handed to Flask untouched, so the table shows what the front takes.
A shape that uses something up (a refresh token, an assertion's jti) builds it once per side.
"""

import base64
import json
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc.jwk import ECKey

from app.extensions import db
from app.oauth.front import Front
from app.services import tokens, users
from app.services.client_cache import find_client
from app.services.clients import delete_client
from tests.helpers import make_app
from tests.integration.helpers import CHALLENGE, PASSWORD, REDIRECT_URI, SCOPE, VERIFIER

FRONT, FLASK = "front", "flask"
FORM = "application/x-www-form-urlencoded"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ISSUER = "http://localhost:5000"
_REQUEST_ID = re.compile(r"^[0-9a-f]{16}$")
# Claims that differ between two issues of the same token (the sign-in time too, made for each side):
# compared by type; expiry times by their distance to iat.
_FRESH_CLAIMS = ("jti", "at_hash", "sid", "auth_time")
_TIME_CLAIMS = ("exp", "nbf")


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass
class World:
    """The clients, the user and the tokens the shapes use; tokens are made on demand."""

    app: object
    secrets: dict = field(default_factory=dict)
    key: object = None

    def auth(self, client_id: str) -> str:
        return basic(client_id, self.secrets[client_id])

    def assertion(self, client_id: str = "signer", key=None) -> str:
        return private_key_jwt_sign(
            key or self.key, client_id=client_id, token_endpoint=f"{ISSUER}/oauth2/token", alg="ES256"
        )

    def code_flow(self, scope: str = SCOPE, client_id: str = "web", username: str = "alice") -> dict:
        """A token response for the user, as the code flow ends (the code exchanged through Flask)."""
        with self.app.app_context():
            client = find_client(client_id)
            user = users.get_user(client, username)
            code = tokens.new_code()
            tokens.store_code(code, client, user, REDIRECT_URI, scope, None, CHALLENGE, "S256", None)
            db.session.commit()
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": VERIFIER,
        }
        response = self.app.test_client(use_cookies=False).post(
            "/oauth2/token", data=data, headers={"Authorization": self.auth(client_id)}
        )
        assert response.status_code == 200, response.text
        return response.json

    def rotated_refresh_token(self) -> str:
        first = self.code_flow()["refresh_token"]
        data = {"grant_type": "refresh_token", "refresh_token": first}
        response = self.app.test_client(use_cookies=False).post(
            "/oauth2/token", data=data, headers={"Authorization": self.auth("web")}
        )
        assert response.status_code == 200, response.text
        return first

    def revoked(self, kind: str) -> str:
        issued = self.code_flow()
        response = self.app.test_client(use_cookies=False).post(
            "/oauth2/revoke", data={"token": issued["refresh_token"]}, headers={"Authorization": self.auth("web")}
        )
        assert response.status_code == 200, response.text
        return issued[kind]

    def cc_token(self, client_id: str = "cc-opaque") -> str:
        response = self.app.test_client(use_cookies=False).post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, headers={"Authorization": self.auth(client_id)}
        )
        assert response.status_code == 200, response.text
        return response.json["access_token"]


@pytest.fixture
def world(app, make_client, make_user, make_role):
    w = World(app)
    cc = {"grant_types": ["client_credentials"], "redirect_uris": [], "scopes": ["api", "read"]}
    for client_id, fields in {
        "m2m": {**cc, "signing_alg": "ES256"},
        "cc-rs256": cc,
        "cc-opaque": {**cc, "token_format": "opaque"},
        "cc-post": {**cc, "token_endpoint_auth_methods": ["client_secret_post"]},
        "web": {"scopes": SCOPE, "redirect_uris": [REDIRECT_URI]},
        "web-opaque": {"scopes": SCOPE, "redirect_uris": [REDIRECT_URI], "token_format": "opaque"},
        "spa": {"token_endpoint_auth_methods": ["none"], "redirect_uris": [REDIRECT_URI]},
        "gone": cc,
    }.items():
        w.secrets[client_id] = make_client(client_id=client_id, **fields)[1]
    w.key = ECKey.generate_key("P-256", auto_kid=True)
    make_client(
        client_id="signer", token_endpoint_auth_methods=["private_key_jwt"], grant_types=["client_credentials"],
        redirect_uris=[], scopes=["api"], jwks={"keys": [{**w.key.as_dict(private=False), "alg": "ES256"}]},
    )  # fmt: skip
    for client_id in ("web", "web-opaque"):
        make_role(client_id, "ROLE_VIEWER")
        make_user(
            client_id, "alice", password=PASSWORD, first_name="Alice", last_name="Liddell",
            email_verified=True, roles=["ROLE_VIEWER"],
        )  # fmt: skip
    delete_client("gone")
    return w


def cc_form(**extra) -> dict:
    return {"grant_type": "client_credentials", **extra}


def post(path: str, data, auth=None, content_type: str = FORM, **kwargs) -> dict:
    headers = dict(kwargs.pop("headers", {}))
    if auth is not None:
        headers["Authorization"] = auth
    body = urlencode(data, doseq=True).encode() if isinstance(data, dict) else data
    return {"path": path, "method": "POST", "data": body, "content_type": content_type, "headers": headers, **kwargs}


def token(data, auth=None, **kwargs) -> dict:
    return post("/oauth2/token", data, auth, **kwargs)


def introspect(data, auth=None, **kwargs) -> dict:
    return post("/oauth2/introspect", data, auth, **kwargs)


def userinfo(method: str, access_token: str | None, scheme: str = "Bearer", **kwargs) -> dict:
    headers = dict(kwargs.pop("headers", {}))
    if access_token is not None:
        headers["Authorization"] = f"{scheme} {access_token}"
    return {"path": "/oauth2/userinfo", "method": method, "headers": headers, **kwargs}


def disabled_user_refresh(w: World) -> dict:
    username = f"bob-{len(w.secrets)}"
    w.secrets[username] = None  # a new user for each side
    with w.app.app_context():
        users.create_user("web", username, password=PASSWORD, email=f"{username}@example.com")
    issued = w.code_flow(username=username, scope="openid offline_access")
    with w.app.app_context():
        users.update_user("web", username, enabled=False)
    return token({"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}, w.auth("web"))


# name -> (which path answers, the request built from the world: called once per side)
SHAPES = {
    # client_credentials, each way of authenticating, and what Authlib refuses
    "cc ES256 JWT, Basic": (FRONT, lambda w: token(cc_form(scope="api"), w.auth("m2m"))),
    "cc RS256 JWT, Basic": (FRONT, lambda w: token(cc_form(), w.auth("cc-rs256"))),
    "cc opaque, Basic": (FRONT, lambda w: token(cc_form(scope="read"), w.auth("cc-opaque"))),
    "cc client_secret_post": (
        FRONT,
        lambda w: token(cc_form(client_id="cc-post", client_secret=w.secrets["cc-post"])),
    ),
    "cc client_secret_post by a Basic client": (
        FRONT,
        lambda w: token(cc_form(client_id="m2m", client_secret=w.secrets["m2m"])),
    ),
    "cc Basic and form credentials together": (
        FRONT,
        lambda w: token(cc_form(client_id="m2m", client_secret=w.secrets["m2m"]), w.auth("m2m")),
    ),
    "cc private_key_jwt": (
        FRONT,
        lambda w: token(cc_form(client_assertion_type=ASSERTION_TYPE, client_assertion=w.assertion())),
    ),
    "cc private_key_jwt signed by another key": (
        FRONT,
        lambda w: token(
            cc_form(
                client_assertion_type=ASSERTION_TYPE,
                client_assertion=w.assertion(key=ECKey.generate_key("P-256", auto_kid=True)),
            )
        ),
    ),
    "cc wrong secret": (FRONT, lambda w: token(cc_form(), basic("m2m", "agcs_wrong"))),
    "cc unknown client": (FRONT, lambda w: token(cc_form(), basic("nobody", "secret"))),
    "cc deleted client": (FRONT, lambda w: token(cc_form(), w.auth("gone"))),
    "cc Basic header not base64": (FRONT, lambda w: token(cc_form(), "Basic !!!not-base64")),
    "cc Basic header of non-UTF-8": (
        FRONT,
        lambda w: token(cc_form(), "Basic " + base64.b64encode(b"m2m:\xff\xfe").decode()),
    ),
    "cc Basic header without a secret": (FRONT, lambda w: token(cc_form(), basic("m2m", ""))),
    "cc Bearer instead of Basic": (FRONT, lambda w: token(cc_form(), "Bearer abc")),
    "cc no credentials": (FRONT, lambda w: token(cc_form())),
    "cc public client": (FRONT, lambda w: token(cc_form(client_id="spa"))),
    "cc scope not allowed": (FRONT, lambda w: token(cc_form(scope="admin"), w.auth("m2m"))),
    "cc by a client without the grant": (FRONT, lambda w: token(cc_form(), w.auth("web"))),
    "cc unknown parameters": (FRONT, lambda w: token(cc_form(foo="bar", empty=""), w.auth("m2m"))),
    "cc Content-Type with charset": (
        FRONT,
        lambda w: token(cc_form(), w.auth("m2m"), content_type=f"{FORM}; charset=UTF-8"),
    ),
    "cc incoming request id": (FRONT, lambda w: token(cc_form(), w.auth("m2m"), headers={"X-Request-Id": "rp-42.a"})),
    "cc plain http to a non-loopback host": (
        FRONT,
        lambda w: token(cc_form(), w.auth("m2m"), base_url="http://auth.example.com"),
    ),
    "cc https to a non-loopback host": (
        FRONT,
        lambda w: token(cc_form(), w.auth("m2m"), base_url="https://auth.example.com"),
    ),
    "cc invalid Host header": (
        FRONT,
        lambda w: token(cc_form(), w.auth("m2m"), environ_overrides={"HTTP_HOST": "bad host!"}),
    ),
    # shapes the front leaves to Flask
    "other grant: password": (FLASK, lambda w: token({"grant_type": "password", "username": "a"}, w.auth("m2m"))),
    "other grant: authorization_code": (
        FLASK,
        lambda w: token({"grant_type": "authorization_code", "code": "x"}, w.auth("web")),
    ),
    "no grant_type": (FLASK, lambda w: token({"scope": "api"}, w.auth("m2m"))),
    "empty body": (FLASK, lambda w: token(b"", w.auth("m2m"))),
    "repeated parameter": (
        FLASK,
        lambda w: token({"grant_type": "client_credentials", "scope": ["api", "read"]}, w.auth("m2m")),
    ),
    "repeated grant_type": (
        FLASK,
        lambda w: token(b"grant_type=client_credentials&grant_type=client_credentials", w.auth("m2m")),
    ),
    "NUL in a parameter": (FLASK, lambda w: token(b"grant_type=client_credentials&scope=a%00", w.auth("m2m"))),
    "non-UTF-8 body": (FLASK, lambda w: token(b"grant_type=client_credentials&scope=\xff\xfe", w.auth("m2m"))),
    "percent-escape of non-UTF-8": (FLASK, lambda w: token(b"grant_type=client_credentials&scope=%ff", w.auth("m2m"))),
    "non-ASCII UTF-8 body": (FLASK, lambda w: token("grant_type=client_credentials&scope=é".encode(), w.auth("m2m"))),
    "JSON body": (
        FLASK,
        lambda w: token(json.dumps(cc_form()).encode(), w.auth("m2m"), content_type="application/json"),
    ),
    "multipart body": (
        FLASK,
        lambda w: {
            "path": "/oauth2/token",
            "method": "POST",
            "data": cc_form(),
            "content_type": "multipart/form-data",
            "headers": {"Authorization": w.auth("m2m")},
        },
    ),
    "text/plain body": (FLASK, lambda w: token(cc_form(), w.auth("m2m"), content_type="text/plain")),
    "no Content-Type": (FLASK, lambda w: token(cc_form(), w.auth("m2m"), content_type="")),
    "oversized body": (FLASK, lambda w: token(cc_form(scope="api", pad="x" * 20_000), w.auth("m2m"))),
    "query string": (
        FLASK,
        lambda w: token(cc_form(), w.auth("m2m"), query_string="grant_type=client_credentials"),
    ),
    "cookie": (FLASK, lambda w: token(cc_form(), w.auth("m2m"), headers={"Cookie": "authgate_session=x"})),
    "chunked body": (
        FLASK,
        lambda w: token(cc_form(), w.auth("m2m"), headers={"Transfer-Encoding": "chunked"}),
    ),
    "body shorter than its Content-Length": (
        FLASK,
        lambda w: token(cc_form(), w.auth("m2m"), environ_overrides={"CONTENT_LENGTH": "999"}),
    ),
    "Content-Length not a number": (
        FLASK,
        lambda w: token(cc_form(), w.auth("m2m"), environ_overrides={"CONTENT_LENGTH": "4x"}),
    ),
    "GET on the token endpoint": (FLASK, lambda w: {"path": "/oauth2/token", "method": "GET"}),
    "HEAD on the token endpoint": (FLASK, lambda w: {"path": "/oauth2/token", "method": "HEAD"}),
    "trailing slash": (FLASK, lambda w: {**token(cc_form(), w.auth("m2m")), "path": "/oauth2/token/"}),
    # refresh_token
    "refresh": (
        FRONT,
        lambda w: token(
            {"grant_type": "refresh_token", "refresh_token": w.code_flow()["refresh_token"]}, w.auth("web")
        ),
    ),
    "refresh, narrower scope": (
        FRONT,
        lambda w: token(
            {"grant_type": "refresh_token", "refresh_token": w.code_flow()["refresh_token"], "scope": "openid"},
            w.auth("web"),
        ),
    ),
    "refresh, wider scope": (
        FRONT,
        lambda w: token(
            {
                "grant_type": "refresh_token",
                "refresh_token": w.code_flow("openid offline_access")["refresh_token"],
                "scope": "openid admin",
            },
            w.auth("web"),
        ),
    ),
    "refresh of a rotated token (reuse)": (
        FRONT,
        lambda w: token({"grant_type": "refresh_token", "refresh_token": w.rotated_refresh_token()}, w.auth("web")),
    ),
    "refresh of a revoked token": (
        FRONT,
        lambda w: token({"grant_type": "refresh_token", "refresh_token": w.revoked("refresh_token")}, w.auth("web")),
    ),
    "refresh by another client": (
        FRONT,
        lambda w: token(
            {"grant_type": "refresh_token", "refresh_token": w.code_flow()["refresh_token"]}, w.auth("m2m")
        ),
    ),
    "refresh of an unknown token": (
        FRONT,
        lambda w: token({"grant_type": "refresh_token", "refresh_token": "agrt_nope"}, w.auth("web")),
    ),
    "refresh without a token": (FRONT, lambda w: token({"grant_type": "refresh_token"}, w.auth("web"))),
    "refresh for a disabled user": (FRONT, disabled_user_refresh),
    # introspection
    "introspect an opaque access token": (FRONT, lambda w: introspect({"token": w.cc_token()}, w.auth("cc-opaque"))),
    "introspect a JWT access token": (
        FRONT,
        lambda w: introspect({"token": w.code_flow()["access_token"]}, w.auth("web")),
    ),
    "introspect a refresh token, hinted": (
        FRONT,
        lambda w: introspect(
            {"token": w.code_flow()["refresh_token"], "token_type_hint": "refresh_token"}, w.auth("web")
        ),
    ),
    "introspect another client's token": (FRONT, lambda w: introspect({"token": w.cc_token()}, w.auth("m2m"))),
    "introspect a revoked token": (
        FRONT,
        lambda w: introspect({"token": w.revoked("access_token")}, w.auth("web")),
    ),
    "introspect an unknown token": (FRONT, lambda w: introspect({"token": "agat_nope"}, w.auth("m2m"))),
    "introspect without a token": (FRONT, lambda w: introspect({"token_type_hint": "access_token"}, w.auth("m2m"))),
    "introspect with a bad hint": (
        FRONT,
        lambda w: introspect({"token": "x", "token_type_hint": 'id"_token'}, w.auth("m2m")),
    ),
    "introspect without credentials": (FRONT, lambda w: introspect({"token": "x"})),
    "introspect with a wrong secret": (FRONT, lambda w: introspect({"token": "x"}, basic("m2m", "wrong"))),
    "introspect by a public client": (FRONT, lambda w: introspect({"token": "x", "client_id": "spa"})),
    "introspect, JSON body": (
        FLASK,
        lambda w: introspect(b'{"token": "x"}', w.auth("m2m"), content_type="application/json"),
    ),
    "introspect, repeated token": (FLASK, lambda w: introspect({"token": ["a", "b"]}, w.auth("m2m"))),
    # userinfo
    "userinfo GET": (FRONT, lambda w: userinfo("GET", w.code_flow()["access_token"])),
    "userinfo POST without a body": (FRONT, lambda w: userinfo("POST", w.code_flow()["access_token"])),
    "userinfo, opaque token": (
        FRONT,
        lambda w: userinfo("GET", w.code_flow(client_id="web-opaque")["access_token"]),
    ),
    "userinfo, token without openid": (
        FRONT,
        lambda w: userinfo("GET", w.code_flow("profile offline_access")["access_token"]),
    ),
    "userinfo, revoked token": (FRONT, lambda w: userinfo("GET", w.revoked("access_token"))),
    "userinfo, a client's token": (FRONT, lambda w: userinfo("GET", w.cc_token())),
    "userinfo, unknown token": (FRONT, lambda w: userinfo("GET", "agat_nope")),
    "userinfo, Basic credentials": (FRONT, lambda w: userinfo("GET", "Y2M6eA==", scheme="Basic")),
    "userinfo, empty Authorization": (FRONT, lambda w: userinfo("GET", None, headers={"Authorization": ""})),
    "userinfo without Authorization": (FLASK, lambda w: userinfo("GET", None)),
    "userinfo POST with a body": (
        FLASK,
        lambda w: {**userinfo("POST", "agat_nope"), "data": b"a=b", "content_type": FORM},
    ),
    "userinfo, token in the query": (
        FLASK,
        lambda w: userinfo("GET", None, query_string={"access_token": "agat_nope"}),
    ),
    "userinfo HEAD": (FLASK, lambda w: userinfo("HEAD", "agat_nope")),
    "userinfo PUT": (FLASK, lambda w: userinfo("PUT", "agat_nope")),
}


def front_of(app) -> Front:
    """The Front in the app's middleware chain."""
    layer = app.wsgi_app
    while not isinstance(layer, Front):
        layer = getattr(layer, "wsgi_app", None) or layer.app
    return layer


class Recorder:
    """Counts the requests the front hands to Flask."""

    def __init__(self, front: Front):
        self.handed, self._inner = 0, front.wsgi_app
        front.wsgi_app = self

    def __call__(self, environ, start_response):
        self.handed += 1
        return self._inner(environ, start_response)


@pytest.fixture
def plain(app, request):
    """The same app built without the front, on the same database, with the same settings."""
    marker = request.node.get_closest_marker("settings")
    overrides = dict(marker.kwargs) if marker else {}
    other = make_app(app.config["SQLALCHEMY_DATABASE_URI"], AUTHGATE_FRONT=0, **overrides)
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def _b64json(segment: str):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _claims(claims: dict) -> dict:
    """Claims (of a JWT or an introspection answer) with ids by type and times as distances to iat."""
    claims = dict(claims)
    for name in _FRESH_CLAIMS:
        if name in claims:
            claims[name] = f"<{type(claims[name]).__name__}>"
    if "iat" in claims:
        for name in _TIME_CLAIMS:
            if name in claims:
                claims[name] = claims[name] - claims["iat"]
        claims["iat"] = "<iat>"
    return claims


def _token_shape(value):
    """A token as what must be equal between two issues: a JWT's header and claims, an opaque one's form."""
    if not isinstance(value, str):
        return value
    parts = value.split(".")
    if len(parts) == 3:
        return {"jwt": _b64json(parts[0]), "claims": _claims(_b64json(parts[1]))}
    prefix, _, rest = value.partition("_")
    return {"opaque": prefix, "length": len(rest)}


def _body(response):
    if response.mimetype == "application/json" and response.data:
        body = response.get_json()
        if isinstance(body, dict):
            return _claims({k: _token_shape(v) if k in ("access_token", "refresh_token", "id_token") else v
                            for k, v in body.items()})  # fmt: skip
        return body
    return response.data


def answer(app, shape: dict):
    """Send the shape through the app's whole stack; the status, headers and body to compare."""
    shape = dict(shape)
    response = app.test_client(use_cookies=False).open(shape.pop("path"), **shape)
    request_id = response.headers.get("X-Request-Id", "")
    headers = [(k, v if k != "X-Request-Id" else "<id>") for k, v in response.headers.items()]
    body = _body(response)
    if b"token" not in response.data and b"jti" not in response.data:
        # No token: the byte count must match too (tokens vary in length by a digit or two).
        return response.status, headers, body, request_id
    return response.status, [(k, v) for k, v in headers if k != "Content-Length"], body, request_id


def both(app, plain, world, build):
    """Both answers to the shape, and how many times the front handed its request to Flask."""
    ours_shape, theirs_shape = build(world), build(World(plain, world.secrets, world.key))
    recorder = Recorder(front_of(app))
    return answer(app, ours_shape), answer(plain, theirs_shape), recorder.handed


def _same(ours, theirs, incoming=None) -> None:
    assert ours[:3] == theirs[:3]
    for request_id in (ours[3], theirs[3]):
        assert request_id == incoming if incoming else _REQUEST_ID.match(request_id)


@pytest.mark.parametrize("name", list(SHAPES))
def test_the_front_answers_as_flask_does(app, plain, world, name):
    path, build = SHAPES[name]
    ours, theirs, handed = both(app, plain, world, build)
    _same(ours, theirs, incoming="rp-42.a" if name == "cc incoming request id" else None)
    assert handed == (1 if path == FLASK else 0), f"{name}: expected the {path} path"


def test_every_taken_shape_has_a_success_among_the_shapes():
    """The table has the successful request of each kind the front takes, not only refusals."""
    taken = {name for name, (path, _) in SHAPES.items() if path == FRONT}
    for kind in ("cc ES256 JWT, Basic", "cc RS256 JWT, Basic", "refresh", "introspect an opaque access token",
                 "userinfo GET"):  # fmt: skip
        assert kind in taken


@pytest.mark.settings(AUTHGATE_CLIENT_AUTH_FAILURES=3)
def test_the_failure_throttle_counts_and_refuses_alike(app, plain, world):
    fronted = Recorder(front_of(app))
    wrong = token(cc_form(), basic("m2m", "agcs_wrong"))
    ours = [answer(app, wrong) for _ in range(5)]
    theirs = [answer(plain, wrong) for _ in range(5)]
    assert [a[0] for a in ours] == ["401 UNAUTHORIZED"] * 3 + ["429 TOO MANY REQUESTS"] * 2
    for mine, other in zip(ours, theirs, strict=True):
        _same(mine, other)
    # The right secret is refused too while the client is throttled at this address, by both.
    _same(answer(app, token(cc_form(), world.auth("m2m"))), answer(plain, token(cc_form(), world.auth("m2m"))))
    assert fronted.handed == 0


@pytest.mark.settings(AUTHGATE_TRUSTED_PROXIES=1, AUTHGATE_CLIENT_AUTH_FAILURES=2)
def test_behind_a_proxy_the_front_sees_the_forwarded_address_and_scheme(app, plain, world):
    fronted = Recorder(front_of(app))

    def via_proxy(client_ip: str, auth: str) -> dict:
        headers = {"X-Forwarded-For": client_ip, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "auth.example.com"}
        return token(cc_form(), auth, headers=headers, base_url="http://10.0.0.9")

    # https at a non-loopback host, as the proxy says: issued.
    ok = [answer(a, via_proxy("198.51.100.7", world.auth("m2m"))) for a in (app, plain)]
    _same(*ok)
    assert ok[0][0] == "200 OK"
    # Failures count against the forwarded address: one address is throttled, another is not.
    for a in (app, plain):
        statuses = [answer(a, via_proxy("203.0.113.5", basic("m2m", "wrong")))[0] for _ in range(3)]
        assert statuses == ["401 UNAUTHORIZED", "401 UNAUTHORIZED", "429 TOO MANY REQUESTS"]
    _same(*[answer(a, via_proxy("203.0.113.5", world.auth("m2m"))) for a in (app, plain)])
    _same(*[answer(a, via_proxy("198.51.100.8", world.auth("m2m"))) for a in (app, plain)])
    assert fronted.handed == 0


def test_without_a_proxy_forwarded_headers_change_nothing(app, plain, world):
    fronted = Recorder(front_of(app))
    shape = token(
        cc_form(), world.auth("m2m"), base_url="http://auth.example.com",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"},
    )  # fmt: skip
    ours, theirs = answer(app, shape), answer(plain, shape)
    _same(ours, theirs)
    assert ours[0] == "400 BAD REQUEST" and fronted.handed == 0


def test_an_unexpected_fault_is_answered_and_logged_alike(app, plain, world, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("signing broke\nsecond line")

    monkeypatch.setattr(tokens, "generate", broken)
    shape = token(cc_form(), world.auth("m2m"), headers={"X-Request-Id": "fault-1"})
    with caplog.at_level(logging.ERROR, logger="authgate.request"):
        ours = answer(app, shape)
        mine = [r.getMessage() for r in caplog.records if r.name == "authgate.request"]
        caplog.clear()
        theirs = answer(plain, shape)
        other = [r.getMessage() for r in caplog.records if r.name == "authgate.request"]
    _same(ours, theirs, incoming="fault-1")
    assert ours[0] == "500 INTERNAL SERVER ERROR" and ours[2]["error"] == "server_error"
    assert mine == other == ["request_id=fault-1 POST /oauth2/token -> 500 RuntimeError: signing broke"]


def test_a_database_outage_is_answered_and_logged_alike(tmp_path, caplog):
    """503 temporarily_unavailable with Retry-After from both paths, and the same log line."""
    url = f"sqlite:///{tmp_path}/missing-directory/authgate.db"
    shapes = [
        token(cc_form(), basic("m2m", "secret"), headers={"X-Request-Id": "outage-1"}),
        introspect({"token": "x"}, basic("m2m", "secret"), headers={"X-Request-Id": "outage-1"}),
        userinfo("GET", "agat_x", headers={"X-Request-Id": "outage-1"}),
    ]
    fronted, flask_only = make_app(url), make_app(url, AUTHGATE_FRONT=0)
    recorder = Recorder(front_of(fronted))
    for shape in shapes:
        logs = []
        answers = []
        for a in (fronted, flask_only):
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="authgate.request"):
                answers.append(answer(a, shape))
            logs.append([r.getMessage() for r in caplog.records if r.name == "authgate.request"])
        _same(*answers, incoming="outage-1")
        assert answers[0][0] == "503 SERVICE UNAVAILABLE" and ("Retry-After", "5") in answers[0][1]
        assert logs[0] == logs[1] and len(logs[0]) == 1 and "-> 503 OperationalError" in logs[0][0]
    assert recorder.handed == 0
