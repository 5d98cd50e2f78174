"""Refresh rotation and reuse detection, client credentials, introspection, revocation."""

import pytest
import requests
import sqlalchemy as sa
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from app.extensions import db
from app.models import AccessToken, AuditEvent
from app.services import users as user_service
from app.services.crypto import sha256_hex
from tests.helpers import verify_jwt
from tests.integration.helpers import introspect, run_code_flow, userinfo_status


def post(tenant, path, auth, **data):
    return requests.post(f"{tenant.url}{path}", data=data, auth=auth, timeout=5)


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
def test_refresh_rotates_and_reuse_revokes_the_family(make_tenant, token_format):
    tenant = make_tenant(token_format=token_format)
    session = tenant.session()
    first, _ = run_code_flow(tenant, session)
    endpoint = f"{tenant.url}/oauth2/token"

    second = session.refresh_token(endpoint, refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    refreshed_id = verify_jwt(second["id_token"], tenant.url, tenant.client_id)
    assert refreshed_id["sub"] == tenant.user.sub and "nonce" not in refreshed_id
    assert introspect(tenant, second["access_token"])["active"] is True

    # The rotated token comes back: someone holds a copy, so the whole family dies.
    with pytest.raises(OAuthError) as info:
        session.refresh_token(endpoint, refresh_token=first["refresh_token"])
    assert info.value.error == "invalid_grant"
    with pytest.raises(OAuthError):
        session.refresh_token(endpoint, refresh_token=second["refresh_token"])
    assert introspect(tenant, second["access_token"]) == {"active": False}
    assert introspect(tenant, second["refresh_token"]) == {"active": False}
    assert userinfo_status(tenant, second["access_token"]) == 401
    db.session.expire_all()
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.kind == "refresh_token_reused"))
    assert event is not None and event.user_id == tenant.user.id


def test_refresh_keeps_scope_within_the_original(make_tenant):
    tenant = make_tenant()
    session = tenant.session()
    token, _ = run_code_flow(tenant, session)
    narrowed = session.refresh_token(f"{tenant.url}/oauth2/token", refresh_token=token["refresh_token"], scope="openid")
    assert narrowed["scope"] == "openid"
    with pytest.raises(OAuthError) as info:
        session.refresh_token(
            f"{tenant.url}/oauth2/token", refresh_token=narrowed["refresh_token"], scope="openid admin"
        )
    assert info.value.error == "invalid_scope"


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
def test_refresh_fails_once_the_user_is_disabled(make_tenant, token_format):
    tenant = make_tenant(token_format=token_format)
    session = tenant.session()
    token, _ = run_code_flow(tenant, session)
    user_service.set_enabled(tenant.client_id, "alice", False)
    with pytest.raises(OAuthError) as info:
        session.refresh_token(f"{tenant.url}/oauth2/token", refresh_token=token["refresh_token"])
    assert info.value.error == "invalid_grant"
    assert introspect(tenant, token["access_token"]) == {"active": False}
    assert userinfo_status(tenant, token["access_token"]) == 401


def machine(tenant, **kwargs):
    return OAuth2Session(tenant.client_id, tenant.secret, **kwargs)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_client_credentials_jwt(make_tenant, alg):
    tenant = make_tenant(
        client_id="reports", grant_types=["client_credentials"], scopes="api:read api:write", signing_alg=alg,
        redirect_uris=[], post_logout_redirect_uris=[],
    )  # fmt: skip
    token = machine(tenant).fetch_token(f"{tenant.url}/oauth2/token", grant_type="client_credentials")
    claims = verify_jwt(token["access_token"], tenant.url, "reports", typ="at+jwt")
    assert claims["sub"] == "reports" and claims["client_id"] == "reports"
    assert claims["scope"] == "api:read api:write" and "roles" not in claims
    assert "refresh_token" not in token and "id_token" not in token
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AccessToken)) == 0
    assert introspect(tenant, token["access_token"])["sub"] == "reports"


def test_client_credentials_opaque_is_stored_hashed(make_tenant):
    tenant = make_tenant(
        client_id="reports", grant_types=["client_credentials"], scopes="api:read", token_format="opaque",
        redirect_uris=[], post_logout_redirect_uris=[],
    )  # fmt: skip
    token = machine(tenant, scope="api:read").fetch_token(f"{tenant.url}/oauth2/token", grant_type="client_credentials")
    assert token["access_token"].startswith("agat_")
    db.session.expire_all()
    (row,) = db.session.scalars(sa.select(AccessToken)).all()
    assert row.token_hash == sha256_hex(token["access_token"])
    data = introspect(tenant, token["access_token"])
    assert data["active"] is True and data["client_id"] == "reports" and data["scope"] == "api:read"


def test_client_credentials_refuses_a_scope_the_client_lacks(make_tenant):
    tenant = make_tenant(
        client_id="reports", grant_types=["client_credentials"], scopes="api:read",
        redirect_uris=[], post_logout_redirect_uris=[],
    )  # fmt: skip
    with pytest.raises(OAuthError) as info:
        machine(tenant, scope="api:write").fetch_token(f"{tenant.url}/oauth2/token", grant_type="client_credentials")
    assert info.value.error == "invalid_scope"


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
def test_clients_see_and_revoke_only_their_own_tokens(make_tenant, make_client, token_format):
    tenant = make_tenant(token_format=token_format)
    _, other_secret = make_client(client_id="other", grant_types=["client_credentials"], redirect_uris=[])
    token, _ = run_code_flow(tenant, tenant.session())
    other = ("other", other_secret)
    for value in (token["access_token"], token["refresh_token"]):
        assert introspect(tenant, value, auth=other) == {"active": False}
        assert post(tenant, "/oauth2/revoke", other, token=value).status_code == 200
    # The other client's revocation changed nothing.
    data = introspect(tenant, token["access_token"])
    assert data["active"] is True and data["client_id"] == "web" and data["roles"] == ["ROLE_ADMIN", "ROLE_VIEWER"]
    assert data["sub"] == tenant.user.sub and data["username"] == "alice" and data["token_type"] == "Bearer"
    assert introspect(tenant, token["refresh_token"])["token_type"] == "refresh_token"


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
def test_revoking_an_access_token(make_tenant, token_format):
    tenant = make_tenant(token_format=token_format)
    token, _ = run_code_flow(tenant, tenant.session())
    response = post(tenant, "/oauth2/revoke", (tenant.client_id, tenant.secret), token=token["access_token"])
    assert response.status_code == 200
    assert introspect(tenant, token["access_token"]) == {"active": False}
    assert userinfo_status(tenant, token["access_token"]) == 401
    # The refresh token lives on.
    assert introspect(tenant, token["refresh_token"])["active"] is True


def test_revoking_a_refresh_token_ends_its_access_tokens(make_tenant):
    tenant = make_tenant()
    token, _ = run_code_flow(tenant, tenant.session())
    post(tenant, "/oauth2/revoke", (tenant.client_id, tenant.secret), token=token["refresh_token"])
    assert introspect(tenant, token["refresh_token"]) == {"active": False}
    assert introspect(tenant, token["access_token"]) == {"active": False}


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        ({"token": "x"}, None, 401, "invalid_client"),
        ({"token": "x"}, ("web", "wrong"), 401, "invalid_client"),
        ({}, "good", 400, "invalid_request"),
        ({"token": "x", "token_type_hint": "id_token"}, "good", 400, "unsupported_token_type"),
    ],
)
def test_introspection_errors(make_tenant, data, auth, status, error):
    tenant = make_tenant()
    auth = (tenant.client_id, tenant.secret) if auth == "good" else auth
    response = post(tenant, "/oauth2/introspect", auth, **data)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


def test_garbage_token_is_just_inactive(make_tenant):
    tenant = make_tenant()
    for value in ("agat_nope", "agrt_nope", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.x", "plain"):
        assert introspect(tenant, value) == {"active": False}


def test_userinfo_errors(make_tenant, make_client):
    tenant = make_tenant(client_id="reports", grant_types=["client_credentials"], redirect_uris=[],
                         post_logout_redirect_uris=[])  # fmt: skip
    assert userinfo_status(tenant, "not-a-token") == 401
    missing = requests.get(f"{tenant.url}/oauth2/userinfo", timeout=5)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == 'Bearer realm="userinfo"'
    # A client's own token carries no user: userinfo has nobody to describe.
    token = machine(tenant).fetch_token(f"{tenant.url}/oauth2/token", grant_type="client_credentials")
    assert userinfo_status(tenant, token["access_token"]) == 401


def test_userinfo_needs_the_openid_scope(make_tenant):
    tenant = make_tenant()
    token, _ = run_code_flow(tenant, tenant.session(scope="profile email"), nonce=None)
    response = requests.get(
        f"{tenant.url}/oauth2/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5
    )
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_a_rotated_secret_stops_working_at_once(make_tenant):
    from app.services import clients

    tenant = make_tenant(client_id="reports", grant_types=["client_credentials"], redirect_uris=[],
                         post_logout_redirect_uris=[])  # fmt: skip
    endpoint = f"{tenant.url}/oauth2/token"
    assert machine(tenant).fetch_token(endpoint, grant_type="client_credentials")["access_token"]
    new_secret = clients.rotate_secret("reports")
    with pytest.raises(OAuthError) as info:
        machine(tenant).fetch_token(endpoint, grant_type="client_credentials")
    assert info.value.error == "invalid_client"
    tenant.secret = new_secret
    assert machine(tenant).fetch_token(endpoint, grant_type="client_credentials")["access_token"]
