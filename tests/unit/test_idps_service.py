"""Identity provider rules and linked identities, per client; the schema refuses crossing clients."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, IdentityProvider, IdentityProviderRole, LinkedIdentity, Role, User
from app.services import NotFound, ValidationError, clients, identities, idps
from app.services.crypto import DecryptionError, decrypt


@pytest.fixture
def web(make_client, make_role):
    client, _ = make_client(client_id="web")
    make_role("web", "ROLE_VIEWER")
    make_role("web", "ROLE_EDITOR")
    return client


@pytest.fixture
def shop(make_client, make_role):
    client, _ = make_client(client_id="shop")
    make_role("shop", "ROLE_SHOP")
    return client


def create(kind="google", client_id="web", **fields):
    fields.setdefault("upstream_client_id", "upstream-id")
    fields.setdefault("client_secret", "upstream-secret")
    return idps.create_provider(client_id, kind, **fields)


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_defaults_per_kind(app, web):
    google = create("google")
    github = create("github")
    corp = create("oidc", slug="corp", name="Corp SSO", issuer="https://sso.example.com/realms/corp")
    assert (google.slug, google.name, google.issuer) == ("google", "Google", "https://accounts.google.com")
    assert google.scopes == ["openid", "email", "profile"] and google.web_url is None
    assert (github.slug, github.name) == ("github", "GitHub")
    assert (github.web_url, github.api_url, github.issuer) == ("https://github.com", "https://api.github.com", None)
    assert github.scopes == ["read:user", "user:email"]
    assert corp.scopes == ["openid", "email", "profile"]
    for provider in (google, github, corp):
        assert provider.enabled and provider.auto_create and not provider.link_verified_email
    assert [p.slug for p in idps.list_providers(web)] == ["google", "github", "corp"]


@pytest.mark.parametrize("kind", ["google", "github", "oidc"])
def test_defaults_tell_a_form_what_create_provider_would_use(app, web, kind):
    fields = {"slug": "corp", "name": "Corp", "issuer": "https://sso.example.com"} if kind == "oidc" else {}
    made = idps.to_dict(create(kind, **fields))
    defaults = idps.defaults(kind)
    for name, value in defaults.items():
        assert made[name] == (fields.get(name, value)), name
    if kind == "oidc":
        assert (defaults["slug"], defaults["name"]) == ("", "") and "issuer" not in defaults
    assert idps.callback_url_for("corp") == "http://localhost:5000/login/corp/callback"
    with pytest.raises(ValidationError, match="must be one of google, github, oidc"):
        idps.defaults("saml")


def test_secret_is_encrypted_with_a_purpose_of_its_own(app, web):
    provider = create(client_secret="upstream-secret")
    assert "upstream-secret" not in provider.client_secret_encrypted
    assert idps.client_secret_of(provider) == "upstream-secret"
    assert "upstream-secret" not in str(idps.to_dict(provider))
    with pytest.raises(DecryptionError):
        decrypt(provider.client_secret_encrypted, app.config["SECRET_KEY"], b"signing-keys")


def test_issuer_may_be_given_as_its_discovery_url(app, web):
    provider = create("oidc", slug="kc", name="Keycloak",
                      issuer="https://kc.example.com/realms/x/.well-known/openid-configuration")  # fmt: skip
    assert provider.issuer == "https://kc.example.com/realms/x"
    # A trailing slash is part of some issuers (Auth0): kept as given.
    assert create("oidc", slug="a0", name="Auth0", issuer="https://t.eu.auth0.com/").issuer == "https://t.eu.auth0.com/"


@pytest.mark.parametrize(
    ("kind", "fields", "field", "reason"),
    [
        ("saml", {}, "type", "must be one of google, github, oidc"),
        ("oidc", {"name": "X", "issuer": "https://x.example.com"}, "slug", "is required"),
        ("oidc", {"slug": "x", "issuer": "https://x.example.com"}, "name", "is required"),
        ("oidc", {"slug": "x", "name": "X"}, "issuer", "is required"),
        ("google", {"slug": "-google"}, "slug", "lowercase letters"),
        ("google", {"slug": "a" * 65}, "slug", "1 to 64"),
        ("google", {"name": "x" * 121}, "name", "at most 120"),
        ("google", {"upstream_client_id": ""}, "upstream_client_id", "is required"),
        ("google", {"client_secret": ""}, "client_secret", "is required"),
        ("google", {"issuer": "http://accounts.example.com"}, "issuer", "use https"),
        ("google", {"issuer": "https://x.example.com#frag"}, "issuer", "query or fragment"),
        ("google", {"issuer": "ftp://x.example.com"}, "issuer", "absolute https URL"),
        ("github", {"web_url": "http://github.example.com"}, "web_url", "use https"),
        ("github", {"issuer": "https://github.com"}, "issuer", "does not apply to a github provider"),
        ("google", {"api_url": "https://api.github.com"}, "api_url", "does not apply to a google provider"),
        ("google", {"scopes": "email profile"}, "scopes", "must include openid"),
        ("github", {"scopes": ["read:user"]}, "scopes", "must include user:email"),
        ("google", {"scopes": 'openid "quoted"'}, "scopes", "not a valid scope"),
        ("google", {"default_roles": ["ROLE_MISSING"]}, "default_roles", "has no role"),
        ("google", {"default_roles": ["ROLE_SHOP"]}, "default_roles", "has no role"),  # another client's
    ],
)
def test_invalid_provider_is_refused_and_nothing_written(app, web, shop, kind, fields, field, reason):
    with pytest.raises(ValidationError) as info:
        create(kind, **fields)
    assert reason in info.value.errors[field], info.value.errors
    assert count(IdentityProvider) == 0 and count(IdentityProviderRole) == 0


def test_loopback_http_is_allowed_for_development(app, web):
    assert create(issuer="http://127.0.0.1:8080").issuer == "http://127.0.0.1:8080"


def test_slug_is_unique_per_client_only(app, web, shop):
    create("google")
    with pytest.raises(ValidationError, match="already has an identity provider 'google'"):
        create("google")
    assert create("google", client_id="shop").client_pk == shop.id
    fields = {"name": "G", "upstream_client_id": "x", "client_secret_encrypted": "x", "scopes": []}
    db.session.add(IdentityProvider(client_pk=web.id, kind="github", slug="google", **fields))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_default_roles_are_roles_of_the_same_client(app, web, shop):
    provider = create(default_roles=["ROLE_VIEWER", "ROLE_EDITOR"])
    assert [r.name for r in provider.default_roles] == ["ROLE_EDITOR", "ROLE_VIEWER"]
    # The database refuses a role of another client, whatever the code does.
    foreign = db.session.scalar(sa.select(Role).where(Role.name == "ROLE_SHOP"))
    db.session.add(IdentityProviderRole(client_pk=web.id, provider_id=provider.id, role_id=foreign.id))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()
    db.session.add(IdentityProviderRole(client_pk=shop.id, provider_id=provider.id, role_id=foreign.id))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_update_changes_settings_but_not_type_or_slug(app, web):
    create(default_roles=["ROLE_VIEWER"])
    provider = idps.update_provider(
        "web", "google", name="Google Workspace", client_secret="rotated", default_roles=["ROLE_EDITOR"],
        link_verified_email=True, auto_create=False, scopes="openid email",
    )  # fmt: skip
    assert provider.name == "Google Workspace" and idps.client_secret_of(provider) == "rotated"
    assert [r.name for r in provider.default_roles] == ["ROLE_EDITOR"]
    assert provider.link_verified_email and not provider.auto_create and provider.scopes == ["openid", "email"]
    assert [r.name for r in idps.update_provider("web", "google", default_roles=[]).default_roles] == []
    for fixed in ({"slug": "g2"}, {"kind": "oidc"}):
        with pytest.raises(ValidationError, match="cannot be changed"):
            idps.update_provider("web", "google", **fixed)
    with pytest.raises(ValidationError, match="must include openid"):
        idps.update_provider("web", "google", scopes="email")
    db.session.expire_all()
    assert idps.get_provider(web, "google").scopes == ["openid", "email"]
    assert idps.set_enabled("web", "google", False).enabled is False
    assert idps.enabled_providers(web) == []


def test_lookups_are_per_client(app, web, shop):
    create("google")
    assert idps.find_provider(shop, "google") is None
    with pytest.raises(NotFound, match="client 'shop' has no identity provider 'google'"):
        idps.get_provider(shop, "google")
    assert idps.find_provider(web, None) is None


def test_to_dict_and_callback_url(app, web):
    provider = create("github", web_url="https://ghe.example.com", api_url="https://ghe.example.com/api/v3")
    data = idps.to_dict(provider, linked=3)
    assert data["callback_url"] == "http://localhost:5000/login/github/callback"
    assert data["web_url"] == "https://ghe.example.com" and "issuer" not in data
    assert data["linked_identities"] == 3 and "client_secret" not in str(data)


# --- linked identities -----------------------------------------------------------------


@pytest.fixture
def alice(web, make_user):
    return make_user("web", "alice")


def test_identities_of_a_user_and_unlink(app, web, alice):
    google, github = create("google"), create("github")
    identities.add_identity(github, alice, "4242", "alice@example.com")
    identities.add_identity(google, alice, "g-1", "alice@example.com")
    db.session.commit()
    assert [(i.provider.slug, i.subject) for i in identities.list_identities(alice)] == [
        ("github", "4242"),
        ("google", "g-1"),
    ]
    assert identities.identity_to_dict(identities.list_identities(alice)[0])["provider_name"] == "GitHub"
    assert identities.sign_in_methods(alice) == ["password", "github", "google"]
    assert idps.identity_counts(web) == {google.id: 1, github.id: 1}

    identities.unlink("web", "alice", "google")
    assert [i.provider.slug for i in identities.list_identities(alice)] == ["github"]
    assert db.session.get(User, alice.id) is not None
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.kind == "identity_unlinked"))
    assert event.user_id == alice.id and event.detail == {"idp": "google"}
    with pytest.raises(NotFound, match="no linked Google account"):
        identities.unlink("web", "alice", "google")
    idps.set_enabled("web", "github", False)
    assert identities.sign_in_methods(alice) == ["password"]


def test_an_upstream_account_links_once_and_a_user_once_per_provider(app, web, alice, make_user):
    google = create("google")
    identities.add_identity(google, alice, "g-1", None)
    with pytest.raises(ValidationError, match="already linked to a user"):
        identities.add_identity(google, make_user("web", "bob"), "g-1", None)
    with pytest.raises(ValidationError, match="already linked to another Google account"):
        identities.add_identity(google, alice, "g-2", None)
    db.session.rollback()


def test_database_keeps_identities_unique_and_inside_the_client(app, web, shop, alice, make_user):
    google = create("google")
    shop_google = create("google", client_id="shop")
    carol = make_user("shop", "carol")
    identities.add_identity(google, alice, "g-1", None)
    db.session.commit()
    cases = [
        # The same upstream subject twice through one provider.
        LinkedIdentity(client_pk=web.id, provider_id=google.id, user_id=make_user("web", "bob").id, subject="g-1"),
        # A provider of web linked to a user of shop, whichever client the row claims.
        LinkedIdentity(client_pk=web.id, provider_id=google.id, user_id=carol.id, subject="g-2"),
        LinkedIdentity(client_pk=shop.id, provider_id=google.id, user_id=carol.id, subject="g-3"),
    ]
    for row in cases:
        db.session.add(row)
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
    with pytest.raises(ValidationError, match="another client"):
        identities.add_identity(shop_google, alice, "g-4", None)


def test_deleting_a_provider_unlinks_but_keeps_the_users(app, web, alice):
    google = create("google", default_roles=["ROLE_VIEWER"])
    identities.add_identity(google, alice, "g-1", None)
    db.session.commit()
    assert idps.delete_provider("web", "google") == 1
    assert count(LinkedIdentity) == 0 and count(IdentityProviderRole) == 0
    assert db.session.get(User, alice.id) is not None


def test_deleting_the_client_takes_its_providers_and_identities(app, web, alice):
    identities.add_identity(create("google"), alice, "g-1", None)
    db.session.commit()
    clients.delete_client("web")
    assert count(IdentityProvider) == 0 and count(LinkedIdentity) == 0
