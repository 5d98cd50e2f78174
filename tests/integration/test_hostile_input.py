"""Malformed headers and parameters that used to get a 500, each with the answer it gets now."""

import base64
import json
import secrets
import time
from urllib.parse import urlencode

import pytest
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc import jws
from joserfc.jwk import ECKey
from werkzeug.datastructures import MultiDict

from tests.helpers import forms
from tests.integration.helpers import REDIRECT_URI, authorize_params

ISSUER = "http://localhost:5000"  # tests.helpers.make_app's
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


# JSON nested deeper than json.loads goes (RecursionError, not ValueError), within joserfc's size
# limits (a header of 512 bytes, claims of 128,000 once encoded).
DEEP = 20_000
NESTED_JSON = "[" * DEEP + "]" * DEEP
NESTED_JWT = ".".join([b64url('{"alg":"ES256","x":' + "[" * 150 + "]" * 150 + "}"), b64url(NESTED_JSON), "c2ln"])
NESTED_HEADER_JWT = ".".join([b64url(NESTED_JSON), b64url("{}"), "c2ln"])


@pytest.fixture
def http(app, make_client):
    make_client(client_id="web", token_endpoint_auth_methods=["client_secret_basic", "client_secret_post"],
                grant_types=["authorization_code", "refresh_token", "client_credentials"])  # fmt: skip
    return app.test_client()


@pytest.fixture
def signer(app, make_client):
    key = ECKey.generate_key("P-256", auto_kid=True)
    make_client(client_id="signer", token_endpoint_auth_methods=["private_key_jwt"], grant_types=["client_credentials"],
                jwks={"keys": [key.as_dict(private=False)]}, redirect_uris=[])  # fmt: skip
    return key


@pytest.fixture
def resource(app, make_client) -> dict:
    """The credentials of a resource server that introspects and revokes (client_secret_post)."""
    _, secret = make_client(
        client_id="api", token_endpoint_auth_methods=["client_secret_post"], grant_types=["client_credentials"],
        redirect_uris=[],
    )  # fmt: skip
    return {"client_id": "api", "client_secret": secret}


def error_of(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/json"
    return response.get_json()["error"]


MALFORMED_BASIC = [
    pytest.param("Basic", id="no credentials"),
    pytest.param("Basic ", id="empty"),
    pytest.param("Basic !!!", id="not base64"),
    pytest.param("Basic gA==", id="not UTF-8"),
    pytest.param("Basic " + base64.b64encode("w\xe9b:s".encode("latin-1")).decode(), id="Latin-1 credentials"),
    pytest.param("Basic \xe9t\xe9", id="not ASCII"),
    pytest.param("Basic " + base64.b64encode(b"web").decode(), id="no colon"),
    pytest.param("Basic " + base64.b64encode(b":secret").decode(), id="no client_id"),
]


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"])
@pytest.mark.parametrize("header", MALFORMED_BASIC)
def test_a_malformed_basic_header_is_invalid_client(http, path, header):
    response = http.post(
        path, data={"grant_type": "client_credentials", "token": "x"}, headers={"Authorization": header}
    )
    assert error_of(response, 401) == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_a_basic_header_naming_a_client_with_a_nul_is_invalid_client(http):
    header = "Basic " + base64.b64encode(b"web\x00:secret").decode()
    response = http.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header})
    assert error_of(response, 401) == "invalid_client"


@pytest.mark.parametrize("token", [NESTED_JWT, NESTED_HEADER_JWT], ids=["nested claims", "nested header"])
def test_a_nested_jwt_is_just_an_invalid_token(http, resource, token):
    credentials = resource
    userinfo = http.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert error_of(userinfo, 401) == "invalid_token"
    introspection = http.post("/oauth2/introspect", data={"token": token, **credentials})
    assert introspection.status_code == 200 and introspection.get_json() == {"active": False}
    assert http.post("/oauth2/revoke", data={"token": token, **credentials}).status_code == 200
    assertion = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": token}
    assert error_of(http.post("/oauth2/token", data=assertion), 400) == "invalid_client"
    logout = http.get("/oauth2/logout", query_string={"id_token_hint": token})
    assert logout.status_code == 400 and "Cannot sign you out" in logout.get_data(as_text=True)


def signed(key, header: dict, claims) -> str:
    """Claims signed with the client's key; with extra header members, unsigned (joserfc checks them first)."""
    payload = claims if isinstance(claims, str) else json.dumps(claims)
    if header:
        return ".".join([b64url(json.dumps({"alg": "ES256", "kid": key.kid, **header})), b64url(payload), "c2ln"])
    return jws.serialize_compact({"alg": "ES256", "kid": key.kid}, payload.encode(), key, ["ES256"])


def valid_claims(**overrides) -> dict:
    claims = {"iss": "signer", "sub": "signer", "aud": f"{ISSUER}/oauth2/token", "exp": int(time.time()) + 600,
              "jti": "j1"}  # fmt: skip
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        pytest.param({"crit": ["\xe9t\xe9"]}, valid_claims(), id="crit header not ASCII"),
        pytest.param({"crit": ['"']}, valid_claims(), id="crit header with a quote"),
        pytest.param({}, valid_claims(exp=float("nan")), id="exp NaN"),
        pytest.param({}, valid_claims(exp=1e300), id="exp far away"),
        pytest.param({}, valid_claims(exp=float("inf")), id="exp infinite"),
        pytest.param({}, valid_claims(jti="j\x00"), id="NUL in jti"),
        pytest.param({}, valid_claims(sub="signer\x00", iss="signer\x00"), id="NUL in sub"),
        pytest.param({}, NESTED_JSON, id="nested claims, signed"),
    ],
)
def test_a_hostile_client_assertion_is_invalid_client(http, signer, header, claims):
    assertion = signed(signer, header, claims)
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    assert error_of(http.post("/oauth2/token", data=data), 400) == "invalid_client"


def test_a_good_client_assertion_still_works(http, signer):
    assertion = private_key_jwt_sign(signer, client_id="signer", token_endpoint=f"{ISSUER}/oauth2/token", alg="ES256")
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    response = http.post("/oauth2/token", data=data)
    assert response.status_code == 200, response.get_data()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/oauth2/token", [("grant_type", "client_credentials"), ("client_id", "web\x00")], id="token"),
        pytest.param("/oauth2/token", [("grant_type", "client_credentials\x00")], id="NUL in grant_type"),
        pytest.param("/oauth2/introspect", [("token", "agat_\x00")], id="introspect"),
        pytest.param("/oauth2/revoke", [("token", "x"), ("token_type_hint\x00", "x")], id="NUL in a name"),
        pytest.param("/oauth2/token", [('sc"op\xe9', "a"), ('sc"op\xe9', "b")], id="repeated name with a quote"),
    ],
)
def test_a_nul_or_a_repeated_odd_name_is_invalid_request(http, path, body):
    assert error_of(http.post(path, data=MultiDict(body)), 400) == "invalid_request"


@pytest.mark.parametrize("hint", ["\xe9", 'a"b', "\\", "x" * 10_000])
def test_an_odd_token_type_hint_is_unsupported_token_type(http, resource, hint):
    data = {"token": "x", "token_type_hint": hint, **resource}
    response = http.post("/oauth2/introspect", data=data)
    assert error_of(response, 400) == "unsupported_token_type"
    assert len(response.get_json()["error_description"]) < 200


def test_a_nul_in_the_sign_in_form_is_refused_as_invalid_input(http):
    page = http.get(
        "/oauth2/authorize",
        query_string={"response_type": "code", "client_id": "web", "redirect_uri": REDIRECT_URI, "scope": "openid",
                      "code_challenge": "c" * 43, "code_challenge_method": "S256"},
    )  # fmt: skip
    login = http.get(page.headers["Location"])
    assert login.status_code == 200
    (form,) = forms(login.get_data(as_text=True))
    response = http.post("/login", data={**form.fields, "username": "al\x00ice", "password": "x\x00"})
    assert response.status_code == 200 and "NUL" in response.get_data(as_text=True)


@pytest.mark.parametrize("host", ["[", "a b", ""])
def test_an_invalid_host_header_is_a_bad_request(http, host):
    token = http.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers={"Host": host})
    assert error_of(token, 400) == "invalid_request"
    page = http.get("/oauth2/authorize?" + urlencode(authorize_params("web")), headers={"Host": host})
    assert page.status_code == 400 and page.mimetype == "text/html"


def test_a_huge_authorization_request_is_refused_before_it_is_parked(http):
    # A request waits for the sign-in in the session cookie, which browsers cap at about 4 KB.
    query = urlencode(authorize_params("web", login_hint=secrets.token_urlsafe(4000)))
    response = http.get(f"/oauth2/authorize?{query}")
    assert response.status_code == 302, response.get_data()[:300]
    assert response.headers["Location"].startswith(REDIRECT_URI)
    assert "error=invalid_request" in response.headers["Location"]


def test_parked_requests_make_way_for_a_new_one_rather_than_outgrow_the_cookie(http):
    # Under filterwarnings=error, Werkzeug's "cookie is too large" warning would fail the request.
    for _ in range(4):
        query = urlencode(authorize_params("web", login_hint=secrets.token_urlsafe(1400)))
        response = http.get(f"/oauth2/authorize?{query}")
        assert response.status_code == 302 and "/login?rid=" in response.headers["Location"]
    assert http.get(response.headers["Location"]).status_code == 200  # the newest one is still parked
