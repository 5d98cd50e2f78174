"""Bad requests, each with the error a client or a browser must see."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import requests
import sqlalchemy as sa
from joserfc.jwk import ECKey

from app.extensions import db
from app.models import AuthorizationCode
from tests.helpers import query_of
from tests.integration.helpers import PASSWORD, REDIRECT_URI, VERIFIER, authorize_params, exchange


def get_code(tenant, browser=None, **overrides) -> tuple[str, object]:
    browser = browser or tenant.browser()
    page = browser.get("/oauth2/authorize?" + urlencode(authorize_params(tenant.client_id, **overrides)))
    if page.status_code == 200:
        page = browser.login(page, "alice", PASSWORD)
    assert page.status_code == 302, page.text[:400]
    return query_of(page.headers["Location"])["code"], browser


# --- the authorization endpoint ------------------------------------------------------------

PAGE_ERRORS = [
    pytest.param([("response_type", "code")], "has no client_id", id="missing client_id"),
    pytest.param([*authorize_params(), ("client_id", "web")], "repeats client_id", id="repeated client_id"),
    pytest.param(authorize_params("nope"), "No application is registered with client_id &#39;nope&#39;", id="unknown"),
    pytest.param(authorize_params(redirect_uri="http://127.0.0.1:8765/other"), "not one of its registered redirect",
                 id="unregistered redirect_uri"),
    pytest.param(authorize_params(redirect_uri="http://127.0.0.1:8765/cb/"), "not one of its registered redirect",
                 id="redirect_uri with extra slash"),
    pytest.param([*authorize_params(), ("redirect_uri", REDIRECT_URI)], "repeats redirect_uri", id="repeated uri"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "message"), PAGE_ERRORS)
def test_errors_before_the_redirect_uri_is_trusted_show_a_page(make_tenant, params, message):
    tenant = make_tenant()
    response = requests.get(f"{tenant.url}/oauth2/authorize?" + urlencode(params), allow_redirects=False, timeout=5)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert message in response.text


REDIRECT_ERRORS = [
    pytest.param({"response_type": None}, "unsupported_response_type", id="missing response_type"),
    pytest.param({"response_type": "token"}, "unsupported_response_type", id="implicit"),
    pytest.param({"scope": "openid admin"}, "invalid_scope", id="scope not allowed"),
    pytest.param({"code_challenge_method": "plain", "code_challenge": VERIFIER}, "invalid_request", id="plain pkce"),
    pytest.param({"code_challenge_method": None}, "invalid_request", id="challenge without method"),
    pytest.param({"code_challenge": None, "code_challenge_method": None}, "invalid_request", id="missing pkce"),
    pytest.param({"code_challenge": "short"}, "invalid_request", id="malformed challenge"),
    pytest.param({"prompt": "none"}, "login_required", id="prompt none without session"),
    pytest.param({"prompt": "none login"}, "invalid_request", id="prompt none with login"),
    pytest.param({"max_age": "soon"}, "invalid_request", id="bad max_age"),
    pytest.param({"max_age": "\u00b2"}, "invalid_request", id="max_age a superscript digit"),
    pytest.param({"max_age": "9" * 5000}, "invalid_request", id="max_age too many digits"),
    # What this server does not support (OIDC Core 3.1.2.6, 6): refused, never ignored.
    pytest.param({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported", id="request object"),
    pytest.param({"request_uri": "https://rp.example/request.jwt"}, "request_uri_not_supported", id="request_uri"),
    pytest.param({"response_mode": "fragment"}, "invalid_request", id="response_mode fragment"),
    pytest.param({"response_mode": "form_post"}, "invalid_request", id="response_mode form_post"),
    pytest.param({"response_mode": 'qu"ery\u00e9'}, "invalid_request", id="response_mode junk"),
    # Hostile values: answered as errors, not 500s.
    pytest.param({"response_type": 'co"de\u00e9'}, "unsupported_response_type", id="response_type with a quote"),
    pytest.param({"nonce": "n\x00nce"}, "invalid_request", id="NUL in nonce"),
    pytest.param({"scope": "openid\x00"}, "invalid_request", id="NUL in scope"),
]


@pytest.mark.parametrize(("overrides", "error"), REDIRECT_ERRORS)
def test_errors_after_the_redirect_uri_is_trusted_go_back_to_the_client(make_tenant, overrides, error):
    tenant = make_tenant()
    query = urlencode(authorize_params(**overrides))
    response = requests.get(f"{tenant.url}/oauth2/authorize?{query}", allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text[:300]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = query_of(location)
    assert params["error"] == error
    assert params["state"] == "xyz" and params["iss"] == tenant.url


def test_response_mode_query_is_accepted(make_tenant):
    tenant = make_tenant()
    query = urlencode(authorize_params(response_mode="query"))
    response = requests.get(f"{tenant.url}/oauth2/authorize?{query}", allow_redirects=False, timeout=5)
    assert response.status_code == 302 and "/login?rid=" in response.headers["Location"]


def test_a_client_id_with_a_nul_is_an_unknown_application(make_tenant):
    tenant = make_tenant()
    query = urlencode(authorize_params("web\x00"))
    response = requests.get(f"{tenant.url}/oauth2/authorize?{query}", allow_redirects=False, timeout=5)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "No application is registered" in response.text


def test_repeated_scope_is_refused(make_tenant):
    tenant = make_tenant()
    query = urlencode([*authorize_params(), ("scope", "openid")])
    response = requests.get(f"{tenant.url}/oauth2/authorize?{query}", allow_redirects=False, timeout=5)
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


# --- the token endpoint ---------------------------------------------------------------------


def test_wrong_pkce_verifier(make_tenant):
    tenant = make_tenant()
    code, _ = get_code(tenant)
    response = exchange(tenant, code, code_verifier="w" * 50)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_missing_pkce_verifier(make_tenant):
    tenant = make_tenant()
    code, _ = get_code(tenant)
    response = exchange(tenant, code, code_verifier=None)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_code_replay_is_refused_and_revokes_what_it_issued(make_tenant):
    tenant = make_tenant()
    code, _ = get_code(tenant)
    first = exchange(tenant, code)
    assert first.status_code == 200, first.text
    replay = exchange(tenant, code)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    tokens = first.json()
    for value in (tokens["access_token"], tokens["refresh_token"]):
        data = requests.post(
            f"{tenant.url}/oauth2/introspect", data={"token": value}, auth=(tenant.client_id, tenant.secret), timeout=5
        ).json()
        assert data == {"active": False}


def test_expired_code(make_tenant):
    tenant = make_tenant()
    code, _ = get_code(tenant)
    db.session.execute(sa.update(AuthorizationCode).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    response = exchange(tenant, code)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_code_lives_at_most_60_seconds(make_tenant):
    tenant = make_tenant()
    get_code(tenant)
    row = db.session.scalar(sa.select(AuthorizationCode))
    assert (row.expires_at - row.created_at).total_seconds() <= 60


def test_another_clients_code(make_tenant, make_client):
    tenant = make_tenant()
    _, other_secret = make_client(client_id="other", redirect_uris=[REDIRECT_URI])
    code, _ = get_code(tenant)
    response = exchange(tenant, code, auth=("other", other_secret))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    # The rightful client can still use it.
    assert exchange(tenant, code).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "auth", "status", "error"),
    [
        ({}, ("web", "agcs_wrong"), 401, "invalid_client"),
        ({}, ("ghost", "x"), 401, "invalid_client"),
        ({}, None, 401, "invalid_client"),  # a confidential client must authenticate
        ({"grant_type": None}, "basic", 400, "unsupported_grant_type"),
        ({"grant_type": "password"}, "basic", 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, "basic", 400, "unauthorized_client"),
        ({"code": None}, "basic", 400, "invalid_request"),
        ({"code": "agac_made_up"}, "basic", 400, "invalid_grant"),
        ({"redirect_uri": "http://127.0.0.1:8765/other"}, "basic", 400, "invalid_grant"),
    ],
)
def test_token_endpoint_errors(make_tenant, overrides, auth, status, error):
    tenant = make_tenant()
    code, _ = get_code(tenant)
    fields = {"code": code, **overrides}
    response = exchange(tenant, fields.pop("code"), auth=auth, **fields)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["Cache-Control"] == "no-store"
    if status == 401 and auth is not None:
        assert response.headers["WWW-Authenticate"].lower().startswith("basic")


def test_repeated_parameter_at_the_token_endpoint(make_tenant):
    tenant = make_tenant()
    code, _ = get_code(tenant)
    body = urlencode([("grant_type", "authorization_code"), ("code", code), ("code", code),
                      ("redirect_uri", REDIRECT_URI), ("code_verifier", VERIFIER)])  # fmt: skip
    response = requests.post(
        f"{tenant.url}/oauth2/token", data=body, auth=(tenant.client_id, tenant.secret), timeout=5,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_public_client_must_send_its_verifier(make_tenant):
    tenant = make_tenant(token_endpoint_auth_methods=["none"])
    code, _ = get_code(tenant)
    response = exchange(tenant, code, auth=None, client_id="web", code_verifier=None)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    response = exchange(tenant, code, auth=None, client_id="web")
    assert response.status_code == 200


def test_confidential_client_without_pkce_when_not_required(make_tenant):
    tenant = make_tenant(require_pkce=False)
    code, _ = get_code(tenant, code_challenge=None, code_challenge_method=None)
    assert exchange(tenant, code, code_verifier=None).status_code == 200


def test_a_nonce_is_accepted_once(make_tenant):
    tenant = make_tenant()
    code, browser = get_code(tenant, nonce="only-once")
    assert exchange(tenant, code).status_code == 200
    page = browser.get("/oauth2/authorize?" + urlencode(authorize_params(nonce="only-once")))
    assert query_of(page.headers["Location"])["error"] == "invalid_request"


def test_a_private_key_jwt_assertion_is_accepted_once(make_tenant):
    from authlib.oauth2.rfc7523 import private_key_jwt_sign

    tenant = make_tenant(
        client_id="signer", token_endpoint_auth_methods=["private_key_jwt"], grant_types=["client_credentials"],
        redirect_uris=[], post_logout_redirect_uris=[], scopes="api",
    )  # fmt: skip
    assertion = private_key_jwt_sign(
        tenant.private_key, client_id="signer", token_endpoint=f"{tenant.url}/oauth2/token", alg="ES256"
    )
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    first = requests.post(f"{tenant.url}/oauth2/token", data=data, timeout=5)
    assert first.status_code == 200, first.text
    replay = requests.post(f"{tenant.url}/oauth2/token", data=data, timeout=5)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_client")
    other_key = ECKey.generate_key("P-256")
    forged = private_key_jwt_sign(
        other_key, client_id="signer", token_endpoint=f"{tenant.url}/oauth2/token", alg="ES256"
    )
    response = requests.post(f"{tenant.url}/oauth2/token", data={**data, "client_assertion": forged}, timeout=5)
    assert response.json()["error"] == "invalid_client"


def test_pages_cannot_be_framed(make_tenant):
    tenant = make_tenant()
    page = tenant.browser().get("/oauth2/authorize?" + urlencode(authorize_params()))
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_redirect_uri_may_be_left_out_of_both_requests_when_only_one_is_registered(make_tenant):
    tenant = make_tenant()
    code, _ = get_code(tenant, redirect_uri=None)
    assert exchange(tenant, code, redirect_uri=None).status_code == 200
    code, _ = get_code(tenant)
    response = exchange(tenant, code, redirect_uri=None)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
