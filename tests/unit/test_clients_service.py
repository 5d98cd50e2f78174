"""Client registration rules, secrets and deletion."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Client, Role, User
from app.services import NotFound, ValidationError
from app.services import clients as service
from app.services.crypto import sha256_hex

GOOD = {"client_id": "web", "name": "Web app", "redirect_uris": ["https://app.example.com/cb"]}
PUBLIC_JWKS = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "im_7-ypCUbru2U7rjQIjlOorpTwTUYAC8M3eJzdhwOo",
            "y": "JoxF9hYeUbPcxiClqx4s0MKwkRSLz4WI4bzV-n2k40U",
        }
    ]
}


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"client_id": ""}, "client_id", "is required"),
        ({"client_id": "ab"}, "client_id", "3 to 64 characters"),
        ({"client_id": "Web"}, "client_id", "lowercase"),
        ({"client_id": "web app"}, "client_id", "lowercase"),
        ({"client_id": "-web"}, "client_id", "starting and ending"),
        ({"client_id": "w" * 65}, "client_id", "3 to 64"),
        ({"name": "  "}, "name", "is required"),
        ({"name": "n" * 121}, "name", "at most 120"),
        ({"token_endpoint_auth_methods": []}, "token_endpoint_auth_methods", "at least one"),
        ({"token_endpoint_auth_methods": ["magic"]}, "token_endpoint_auth_methods", "unknown method"),
        (
            {"token_endpoint_auth_methods": ["none", "client_secret_post"]},
            "token_endpoint_auth_methods",
            "cannot be combined",
        ),
        ({"grant_types": []}, "grant_types", "at least one"),
        ({"grant_types": ["password"]}, "grant_types", "unknown grant type"),
        (
            {"grant_types": ["refresh_token", "client_credentials"]},
            "grant_types",
            "only issued with authorization_code",
        ),
        (
            {"token_endpoint_auth_methods": ["none"], "grant_types": ["client_credentials"]},
            "grant_types",
            "needs a confidential client",
        ),
        ({"redirect_uris": []}, "redirect_uris", "at least one redirect URI"),
        ({"redirect_uris": ["/relative/cb"]}, "redirect_uris", "absolute"),
        ({"redirect_uris": ["https://app.example.com/cb#frag"]}, "redirect_uris", "fragment"),
        ({"redirect_uris": ["http://app.example.com/cb"]}, "redirect_uris", "only allowed for localhost"),
        ({"redirect_uris": ["https://*.example.com/cb"]}, "redirect_uris", "wildcards"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "redirect_uris", "reverse-domain"),
        ({"redirect_uris": ["https:///cb"]}, "redirect_uris", "must name a host"),
        ({"post_logout_redirect_uris": ["http://evil.example/"]}, "post_logout_redirect_uris", "localhost"),
        ({"scopes": ['bad"scope']}, "scopes", "not a valid scope"),
        ({"scopes": ["x" * 65]}, "scopes", "not a valid scope"),
        ({"access_token_lifetime": 59}, "access_token_lifetime", "between 60 and 86400"),
        ({"access_token_lifetime": 86401}, "access_token_lifetime", "between 60 and 86400"),
        ({"access_token_lifetime": "soon"}, "access_token_lifetime", "whole number"),
        ({"refresh_token_lifetime": 91 * 86400}, "refresh_token_lifetime", "between 300"),
        (
            {"access_token_lifetime": 7200, "refresh_token_lifetime": 3600},
            "refresh_token_lifetime",
            "at least the access token lifetime",
        ),
        ({"refresh_token_max_lifetime": 366 * 86400}, "refresh_token_max_lifetime", "between 300"),
        ({"refresh_token_max_lifetime": 299}, "refresh_token_max_lifetime", "between 300"),
        (
            {"refresh_token_lifetime": 7200, "refresh_token_max_lifetime": 3600},
            "refresh_token_max_lifetime",
            "at least the refresh token idle timeout",
        ),
        ({"token_format": "saml"}, "token_format", "jwt, opaque"),
        ({"signing_alg": "HS256"}, "signing_alg", "RS256, ES256, EdDSA"),
        (
            {"token_endpoint_auth_methods": ["none"], "require_pkce": False},
            "require_pkce",
            "public clients must use PKCE",
        ),
        ({"token_endpoint_auth_methods": ["private_key_jwt"]}, "jwks", "needs the client's public keys"),
        ({"jwks": "{not json"}, "jwks", "JSON Web Key Set"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "jwks", "public keys only"),
    ],
)
def test_invalid_client_is_refused_and_nothing_written(app, changes, field, reason):
    with pytest.raises(ValidationError) as info:
        service.create_client(**{**GOOD, **changes})
    assert field in info.value.errors, info.value.errors
    assert reason in info.value.errors[field]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/cb",
        "https://app.example.com:8443/cb?x=1",
        "http://localhost:3000/cb",
        "http://127.0.0.1:8765/cb",
        "http://[::1]:8765/cb",
        "com.example.app:/oauth2redirect",
    ],
)
def test_acceptable_redirect_uris(app, uri):
    client, _ = service.create_client(**{**GOOD, "redirect_uris": [uri]})
    assert client.redirect_uris == [uri]


def test_create_confidential_client_stores_only_the_secret_hash(app):
    client, secret = service.create_client(**GOOD)
    assert secret.startswith("agcs_") and len(secret) > 40
    assert client.secret_hash == sha256_hex(secret)
    assert secret not in repr(service.to_dict(client))
    assert service.verify_secret(client, secret)
    assert not service.verify_secret(client, secret + "x")
    # Defaults a user of a mature IAM expects.
    assert client.grant_types == ["authorization_code", "refresh_token"]
    assert client.require_pkce is True
    assert client.token_format == "jwt" and client.signing_alg == "RS256"


def test_public_client_has_no_secret(app):
    client, secret = service.create_client(**GOOD, token_endpoint_auth_methods=["none"])
    assert secret is None and client.secret_hash is None and client.is_public


def test_private_key_jwt_client_registers_public_keys(app):
    client, secret = service.create_client(**GOOD, token_endpoint_auth_methods=["private_key_jwt"], jwks=PUBLIC_JWKS)
    assert secret is None
    assert client.jwks == PUBLIC_JWKS


def test_client_id_is_unique(app):
    service.create_client(**GOOD)
    with pytest.raises(ValidationError, match="already taken"):
        service.create_client(**GOOD)


def test_scopes_and_lists_are_normalised(app):
    client, _ = service.create_client(
        **{
            **GOOD,
            "scopes": "openid  profile openid api:read",
            "redirect_uris": [GOOD["redirect_uris"][0]] * 2,
        }
    )
    assert client.scopes == ["openid", "profile", "api:read"]
    assert client.redirect_uris == GOOD["redirect_uris"]


def test_rotate_secret_replaces_the_old_one(app):
    client, old = service.create_client(**GOOD)
    new = service.rotate_secret("web")
    assert new != old
    assert service.verify_secret(client, new) and not service.verify_secret(client, old)


def test_rotate_secret_of_public_client_is_refused(app):
    service.create_client(**GOOD, token_endpoint_auth_methods=["none"])
    with pytest.raises(ValidationError, match="does not authenticate with a client secret"):
        service.rotate_secret("web")


def test_update_keeps_client_id_and_revalidates(app):
    service.create_client(**GOOD)
    with pytest.raises(ValidationError, match="cannot be changed"):
        service.update_client("web", client_id="other")
    with pytest.raises(ValidationError) as info:
        service.update_client("web", redirect_uris=[])
    assert "redirect_uris" in info.value.errors
    client, secret = service.update_client("web", name="Renamed", token_format="opaque")
    assert (client.name, client.token_format, secret) == ("Renamed", "opaque", None)


def test_switching_to_confidential_issues_a_secret(app):
    service.create_client(**GOOD, token_endpoint_auth_methods=["none"])
    client, secret = service.update_client("web", token_endpoint_auth_methods=["client_secret_basic"])
    assert secret and service.verify_secret(client, secret)
    client, secret = service.update_client("web", token_endpoint_auth_methods=["none"])
    assert secret is None and client.secret_hash is None


def test_delete_takes_users_and_roles_with_it(app, make_role, make_user):
    service.create_client(**GOOD)
    make_role("web", "ROLE_ADMIN")
    make_user("web", "alice", roles=["ROLE_ADMIN"])
    make_user("web", "bob")
    assert service.delete_client("web") == {"users": 2, "roles": 1}
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Role)) == 0
    with pytest.raises(NotFound):
        service.get_client("web")


def test_console_client_cannot_be_deleted(app):
    with pytest.raises(ValidationError, match="cannot be deleted"):
        service.delete_client(service.CONSOLE_CLIENT_ID)


def test_list_searches_and_paginates_in_the_database(app, make_client):
    for n in range(12):
        make_client(client_id=f"app-{n:02d}", name=f"App {n}")
    make_client(client_id="billing", name="Billing 100%")
    page = service.list_clients(page=2, per_page=5)
    assert page.total == 13 and page.pages == 3
    assert [c.client_id for c in page.items] == [f"app-{n:02d}" for n in range(5, 10)]
    assert [c.client_id for c in service.list_clients("BILL").items] == ["billing"]
    # LIKE wildcards in the search text are literal.
    assert [c.client_id for c in service.list_clients("100%").items] == ["billing"]
    assert service.list_clients("_").total == 0


def test_refresh_token_idle_timeout_and_maximum_are_stored_and_shown(app):
    client, _ = service.create_client(**GOOD, refresh_token_lifetime=3600, refresh_token_max_lifetime=86400)
    assert (client.refresh_token_lifetime, client.refresh_token_max_lifetime) == (3600, 86400)
    data = service.to_dict(client)
    assert data["refresh_token_lifetime"] == 3600 and data["refresh_token_max_lifetime"] == 86400
    default, _ = service.create_client(**{**GOOD, "client_id": "other"})
    assert default.refresh_token_max_lifetime == 90 * 86400
    updated, _ = service.update_client("web", refresh_token_max_lifetime=7200)
    assert updated.refresh_token_max_lifetime == 7200
