"""RP-initiated logout, key rotation as a relying party sees it, discovery and JWKS."""

from urllib.parse import urlencode

import pytest
import requests
import sqlalchemy as sa
from authlib.oidc.discovery import OpenIDProviderMetadata

from app.extensions import db
from app.models import BrowserSession
from app.services import keys as key_service
from tests.helpers import forms, jwks_of, query_of, verify_jwt
from tests.integration.helpers import LOGOUT_URI, run_code_flow, start


def logout_url(**params):
    return "/oauth2/logout?" + urlencode(params)


def test_logout_with_id_token_hint_ends_the_session_and_redirects(make_tenant):
    tenant = make_tenant()
    token, browser = run_code_flow(tenant, tenant.session())
    response = browser.get(logout_url(id_token_hint=token["id_token"], post_logout_redirect_uri=LOGOUT_URI, state="s1"))
    assert response.status_code == 302
    assert response.headers["Location"] == f"{LOGOUT_URI}?state=s1"
    db.session.expire_all()
    sid = verify_jwt(token["id_token"], tenant.url, tenant.client_id)["sid"]
    assert db.session.get(BrowserSession, sid).ended_at is not None
    _, landed = start(tenant, browser, prompt="none")
    assert query_of(landed.headers["Location"])["error"] == "login_required"


def test_logout_without_hint_asks_first(make_tenant):
    tenant = make_tenant()
    _, browser = run_code_flow(tenant, tenant.session())
    page = browser.get(logout_url(client_id="web", post_logout_redirect_uri=LOGOUT_URI, state="s2"))
    assert page.status_code == 200 and "Sign out of Web App?" in page.text
    assert db.session.scalar(sa.select(BrowserSession.ended_at)) is None
    done = browser.submit(page)
    assert done.status_code == 302 and done.headers["Location"] == f"{LOGOUT_URI}?state=s2"
    db.session.expire_all()
    assert db.session.scalar(sa.select(BrowserSession.ended_at)) is not None


def test_logout_confirmation_needs_its_csrf_token(make_tenant):
    tenant = make_tenant()
    _, browser = run_code_flow(tenant, tenant.session())
    page = browser.get(logout_url(client_id="web"))
    refused = browser.submit(page, {"csrf_token": "forged"})
    assert refused.status_code == 400
    assert db.session.scalar(sa.select(BrowserSession.ended_at)) is None


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1:8765/elsewhere", LOGOUT_URI + "/", "https://evil.example/"],
)
def test_unregistered_post_logout_redirect_is_never_followed(make_tenant, uri):
    tenant = make_tenant()
    token, browser = run_code_flow(tenant, tenant.session())
    response = browser.get(logout_url(id_token_hint=token["id_token"], post_logout_redirect_uri=uri))
    assert response.status_code == 400 and "Location" not in response.headers
    assert "not registered" in response.text


def test_logout_with_a_forged_hint_is_refused(make_tenant):
    tenant = make_tenant()
    token, browser = run_code_flow(tenant, tenant.session())
    header, payload, signature = token["id_token"].split(".")
    forged = ".".join([header, payload, signature[::-1]])
    response = browser.get(logout_url(id_token_hint=forged, post_logout_redirect_uri=LOGOUT_URI))
    assert response.status_code == 400 and "Location" not in response.headers


def test_hosted_logout_signs_out_of_every_client(make_tenant):
    tenant = make_tenant()
    _, browser = run_code_flow(tenant, tenant.session())
    page = browser.get("/logout")
    assert forms(page.text)
    done = browser.submit(page)
    assert "You are signed out" in done.text
    _, landed = start(tenant, browser, prompt="none")
    assert query_of(landed.headers["Location"])["error"] == "login_required"


# --- keys ---------------------------------------------------------------------------------------


def kid_of(token):
    import base64
    import json

    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]


def test_rotation_publishes_first_and_old_tokens_keep_verifying(make_tenant, app):
    app.config["AUTHGATE_JWKS_MAX_AGE"] = 600
    tenant = make_tenant(signing_alg="ES256")
    before, _ = run_code_flow(tenant, tenant.session())
    old_kid = kid_of(before["id_token"])

    (new,) = key_service.rotate("ES256")
    published = {k["kid"] for k in jwks_of(tenant.url).as_dict()["keys"]}
    assert {old_kid, new.kid} <= published
    during, _ = run_code_flow(tenant, tenant.session(), nonce="during")
    assert kid_of(during["id_token"]) == old_kid  # the next key signs nothing yet

    key_service.rotate("ES256", immediately=True)
    after, _ = run_code_flow(tenant, tenant.session(), nonce="after")
    assert kid_of(after["id_token"]) not in (old_kid, new.kid)
    # Tokens signed before the rotations still verify against the published JWKS.
    for token in (before, during, after):
        verify_jwt(token["id_token"], tenant.url, tenant.client_id)
        verify_jwt(token["access_token"], tenant.url, tenant.client_id, typ="at+jwt")
        introspected = requests.post(
            f"{tenant.url}/oauth2/introspect", data={"token": token["access_token"]},
            auth=(tenant.client_id, tenant.secret), timeout=5,
        ).json()  # fmt: skip
        assert introspected["active"] is True


def test_jwks_lists_public_parts_only_and_is_cacheable(make_tenant, app):
    tenant = make_tenant()
    response = requests.get(f"{tenant.url}/oauth2/jwks", timeout=5)
    assert response.headers["Cache-Control"] == f"public, max-age={app.config['AUTHGATE_JWKS_MAX_AGE']}"
    keys = response.json()["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "EdDSA", "RS256"]
    assert all("d" not in k and k["use"] == "sig" and k["kid"] for k in keys)


def test_discovery_is_consistent_and_valid(make_tenant):
    tenant = make_tenant()
    oidc = requests.get(f"{tenant.url}/.well-known/openid-configuration", timeout=5).json()
    oauth = requests.get(f"{tenant.url}/.well-known/oauth-authorization-server", timeout=5).json()
    assert oidc == oauth
    OpenIDProviderMetadata(oidc).validate()
    assert oidc["issuer"] == tenant.url
    assert oidc["code_challenge_methods_supported"] == ["S256"]
    assert oidc["response_types_supported"] == ["code"]
    assert oidc["authorization_response_iss_parameter_supported"] is True
    # Every advertised endpoint answers (none is a 404).
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "introspection_endpoint", "revocation_endpoint", "end_session_endpoint"):  # fmt: skip
        assert requests.get(oidc[name], timeout=5, allow_redirects=False).status_code != 404, name
