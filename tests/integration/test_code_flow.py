"""The authorization code flow with PKCE, driven by Authlib's relying-party client over HTTP.

Tokens are checked independently with joserfc against the published JWKS.
"""

import pytest
import requests
import sqlalchemy as sa
from authlib.common.security import generate_token

from app.extensions import db
from app.models import AccessToken, RefreshToken
from app.services.crypto import sha256_hex
from tests.helpers import at_hash, verify_jwt
from tests.integration.helpers import run_code_flow

AUTH_METHOD_CASES = [
    pytest.param("client_secret_basic", ["client_secret_basic"], id="confidential-basic"),
    pytest.param("client_secret_post", ["client_secret_post"], id="confidential-post"),
    pytest.param("private_key_jwt", ["private_key_jwt"], id="private-key-jwt"),
    pytest.param("none", ["none"], id="public"),
]


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
@pytest.mark.parametrize(("auth_method", "methods"), AUTH_METHOD_CASES)
def test_code_flow_per_client_kind(make_tenant, auth_method, methods, token_format):
    tenant = make_tenant(token_endpoint_auth_methods=methods, token_format=token_format)
    token, _ = run_code_flow(tenant, tenant.session(auth_method))
    assert token["token_type"].lower() == "bearer"
    assert token["refresh_token"].startswith("agrt_")
    assert token["scope"] == "openid profile email roles offline_access"
    check_id_token(tenant, token, "RS256")
    check_access_token(tenant, token, token_format)
    check_userinfo(tenant, token)


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_code_flow_per_signing_alg(make_tenant, alg, token_format):
    tenant = make_tenant(signing_alg=alg, token_format=token_format)
    token, _ = run_code_flow(tenant, tenant.session())
    header_alg = check_id_token(tenant, token, alg)
    assert header_alg == alg
    check_access_token(tenant, token, token_format, alg)


def check_id_token(tenant, token, alg):
    claims = verify_jwt(token["id_token"], tenant.url, tenant.client_id)
    assert claims["sub"] == tenant.user.sub and claims["sub"] != tenant.user.username
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["at_hash"] == at_hash(token["access_token"], alg)
    assert claims["roles"] == ["ROLE_ADMIN", "ROLE_VIEWER"]
    assert claims["sid"] and claims["auth_time"] <= claims["iat"]
    assert claims["amr"] == ["pwd"]
    assert claims["preferred_username"] == "alice" and claims["name"] == "Alice Liddell"
    assert claims["email"] == "alice@example.com" and claims["email_verified"] is True
    return jwt_header_alg(token["id_token"])


def jwt_header_alg(token):
    import base64
    import json

    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"]


def check_access_token(tenant, token, token_format, alg="RS256"):
    access = token["access_token"]
    if token_format == "jwt":
        claims = verify_jwt(access, tenant.url, tenant.client_id, typ="at+jwt")
        assert jwt_header_alg(access) == alg
        assert claims["sub"] == tenant.user.sub
        assert claims["client_id"] == tenant.client_id
        assert claims["roles"] == ["ROLE_ADMIN", "ROLE_VIEWER"]
        assert claims["scope"] == token["scope"] and claims["jti"]
        # Nothing of a JWT access token is written to the database.
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AccessToken)) == 0
    else:
        assert access.startswith("agat_") and access.count(".") == 0
        stored = db.session.scalar(sa.select(AccessToken.token_hash))
        assert stored == sha256_hex(access) and access not in stored
    assert db.session.scalar(sa.select(RefreshToken.token_hash)) == sha256_hex(token["refresh_token"])


def check_userinfo(tenant, token):
    response = requests.get(
        f"{tenant.url}/oauth2/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5
    )
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["sub"] == tenant.user.sub
    assert info["roles"] == ["ROLE_ADMIN", "ROLE_VIEWER"]
    assert info["email"] == "alice@example.com"
    assert info["preferred_username"] == "alice"


def test_userinfo_filters_claims_by_scope(make_tenant):
    tenant = make_tenant()
    token, _ = run_code_flow(tenant, tenant.session(scope="openid"))
    info = requests.get(
        f"{tenant.url}/oauth2/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5
    ).json()
    assert info == {"sub": tenant.user.sub, "roles": ["ROLE_ADMIN", "ROLE_VIEWER"]}
    id_claims = verify_jwt(token["id_token"], tenant.url, tenant.client_id)
    assert "email" not in id_claims and "name" not in id_claims
    # No refresh token without the refresh grant being asked for? The client has it: one is issued.
    assert "refresh_token" in token


def test_roles_are_those_assigned(make_tenant):
    tenant = make_tenant(roles=("ROLE_ADMIN", "ROLE_VIEWER", "ROLE_BILLING"), user_roles=["ROLE_VIEWER"])
    token, _ = run_code_flow(tenant, tenant.session())
    assert verify_jwt(token["id_token"], tenant.url, tenant.client_id)["roles"] == ["ROLE_VIEWER"]
    assert verify_jwt(token["access_token"], tenant.url, tenant.client_id)["roles"] == ["ROLE_VIEWER"]


def test_second_authorization_uses_the_session_without_a_login_page(make_tenant):
    tenant = make_tenant()
    session = tenant.session()
    first, browser = run_code_flow(tenant, session)
    url, _ = session.create_authorization_url(
        f"{tenant.url}/oauth2/authorize", code_verifier=generate_token(48), nonce="second"
    )
    landed = browser.get(url)
    assert landed.status_code == 302 and "code=" in landed.headers["Location"]
    first_sid = verify_jwt(first["id_token"], tenant.url, tenant.client_id)["sid"]
    assert first_sid
