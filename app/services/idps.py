"""Identity providers per client: Google, GitHub, any OpenID Connect issuer (linked accounts: identities.py).

Upstream endpoints are settings of each provider with the public services as defaults, so
GitHub Enterprise Server, a company's Keycloak or a test double is only a different URL.
"""

import re

import sqlalchemy as sa
from flask import current_app

from app.capabilities import IDP_KINDS
from app.extensions import db
from app.models import Client, IdentityProvider, IdentityProviderRole, LinkedIdentity
from app.services import Errors, NotFound, ValidationError, audit, transaction
from app.services.clients import get_client
from app.services.crypto import decrypt, encrypt
from app.services.roles import get_role
from app.services.validation import check_base_url, check_bool, check_scopes, check_text, choice, fail

GOOGLE_ISSUER = "https://accounts.google.com"
GITHUB_WEB_URL = "https://github.com"
GITHUB_API_URL = "https://api.github.com"
DEFAULT_NAMES = {"google": "Google", "github": "GitHub"}
DEFAULT_SCOPES = {
    "google": ["openid", "email", "profile"],
    "github": ["read:user", "user:email"],
    "oidc": ["openid", "email", "profile"],
}
# The settings that say where the upstream is, by kind; the others do not apply to that kind.
ENDPOINT_FIELDS = {"google": ("issuer",), "oidc": ("issuer",), "github": ("web_url", "api_url")}
DISCOVERY_PATH = "/.well-known/openid-configuration"
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SECRET_PURPOSE = b"idp-client-secrets"


# --- field validators: each takes raw input and returns the normalised value ----------


check_kind = choice(IDP_KINDS)


def check_slug(value) -> str:
    value = (value or "").strip()
    if not value:
        fail("is required for an OpenID Connect provider (it names the provider in URLs and the idp claim)")
    if not SLUG_RE.match(value):
        fail("must be 1 to 64 lowercase letters, digits and hyphens, starting and ending with a letter or digit")
    return value


def check_name(value) -> str:
    return check_text(value, 120, required="is required (it is shown on the button: Continue with <name>)")


def check_upstream_client_id(value) -> str:
    value = (value or "").strip()
    if not value:
        fail("is required: the client id this server is registered with at the provider")
    if len(value) > 255 or any(c.isspace() for c in value):
        fail("must be at most 255 characters without spaces")
    return value


def check_client_secret(value) -> str:
    if not isinstance(value, str) or not value.strip():
        fail("is required: the client secret this server is registered with at the provider")
    if len(value) > 1000:
        fail("must be at most 1000 characters")
    return value.strip()


def check_issuer(value) -> str:
    """The issuer URL exactly as the provider writes it in `iss`; its discovery URL is accepted too."""
    value = check_base_url(value)
    if value.endswith(DISCOVERY_PATH):
        value = value[: -len(DISCOVERY_PATH)]
    return value


def _check_provider_scopes(kind: str, scopes: list[str]) -> list[str]:
    if kind in ("google", "oidc") and "openid" not in scopes:
        fail("must include openid for an OpenID Connect provider")
    if kind == "github" and not {"user", "user:email"} & set(scopes):
        fail("must include user:email, which GitHub needs to show the verified email addresses")
    return scopes


# --- queries ---------------------------------------------------------------------------


def find_provider(client: Client, slug: str) -> IdentityProvider | None:
    if not isinstance(slug, str) or not slug:
        return None
    query = sa.select(IdentityProvider).where(IdentityProvider.client_pk == client.id, IdentityProvider.slug == slug)
    return db.session.scalar(query)


def get_provider(client: Client, slug: str) -> IdentityProvider:
    provider = find_provider(client, slug)
    if provider is None:
        raise NotFound(f"client {client.client_id!r} has no identity provider {slug!r}")
    return provider


_OF_CLIENT = (
    sa.select(IdentityProvider)
    .where(IdentityProvider.client_pk == sa.bindparam("client_pk"))
    .order_by(IdentityProvider.id)
)


def list_providers(client: Client) -> list[IdentityProvider]:
    """The client's providers, in the order they were added (the order of the login page's buttons)."""
    return list(db.session.scalars(_OF_CLIENT, {"client_pk": client.id}))


def enabled_providers(client: Client) -> list[IdentityProvider]:
    return [p for p in list_providers(client) if p.enabled]


def identity_counts(client: Client) -> dict[int, int]:
    """Number of linked identities of each provider of the client, by provider id."""
    query = (
        sa.select(LinkedIdentity.provider_id, sa.func.count())
        .where(LinkedIdentity.client_pk == client.id)
        .group_by(LinkedIdentity.provider_id)
    )
    return dict(db.session.execute(query).all())


def client_secret_of(provider: IdentityProvider) -> str:
    return decrypt(provider.client_secret_encrypted, current_app.config["SECRET_KEY"], SECRET_PURPOSE)


def callback_url(provider: IdentityProvider) -> str:
    """The redirect URI to register at the upstream: the same for every client using this slug."""
    return callback_url_for(provider.slug)


def callback_url_for(slug: str) -> str:
    """The redirect URI of a provider with this slug, before it exists (for the form that makes it)."""
    return f"{current_app.config['AUTHGATE_ISSUER']}/login/{slug}/callback"


def defaults(kind: str) -> dict:
    """What `create_provider` uses for the settings left out, for a form to start from."""
    kind = check_kind(kind)
    values = {
        "slug": kind if kind != "oidc" else "",
        "name": DEFAULT_NAMES.get(kind, ""),
        "scopes": DEFAULT_SCOPES[kind],
    }
    if kind == "google":
        values["issuer"] = GOOGLE_ISSUER
    elif kind == "github":
        values.update(web_url=GITHUB_WEB_URL, api_url=GITHUB_API_URL)
    return {**values, "auto_create": True, "link_verified_email": False, "enabled": True}


def to_dict(provider: IdentityProvider, linked: int | None = None) -> dict:
    """The provider as a script would want it; never the client secret."""
    data = {
        "slug": provider.slug,
        "type": provider.kind,
        "name": provider.name,
        "enabled": provider.enabled,
        "upstream_client_id": provider.upstream_client_id,
        "scopes": provider.scopes,
        "auto_create": provider.auto_create,
        "default_roles": [role.name for role in provider.default_roles],
        "link_verified_email": provider.link_verified_email,
        "callback_url": callback_url(provider),
        "created_at": provider.created_at.isoformat(),
    }
    if provider.kind == "github":
        data.update(web_url=provider.web_url, api_url=provider.api_url)
    else:
        data["issuer"] = provider.issuer
    if linked is not None:
        data["linked_identities"] = linked
    return data


# --- writes ----------------------------------------------------------------------------


AUDITED = ("name", "enabled", "upstream_client_id", "scopes", "issuer", "web_url", "api_url", "auto_create",
           "link_verified_email")  # fmt: skip


def _audited(provider: IdentityProvider) -> dict:
    """What the audit log compares of a provider; the client secret only as whether it was set or changed."""
    db.session.expire(provider, ["default_roles"])  # its rows were just written, not through the relationship
    return {
        **{name: getattr(provider, name) for name in AUDITED},
        "default_roles": [role.name for role in provider.default_roles],
        "client_secret": provider.client_secret_encrypted,
    }


def _validate(kind: str, fields: dict, errors: Errors) -> dict:
    """Normalise the provider's own settings; which endpoint settings apply depends on the kind."""
    clean = {}
    checks = {
        "name": check_name,
        "upstream_client_id": check_upstream_client_id,
        "client_secret": check_client_secret,
        "issuer": check_issuer,
        "web_url": check_base_url,
        "api_url": check_base_url,
        "enabled": check_bool,
        "auto_create": check_bool,
        "link_verified_email": check_bool,
    }
    endpoint_fields = ENDPOINT_FIELDS[kind]
    for name, value in fields.items():
        if name in ("issuer", "web_url", "api_url") and name not in endpoint_fields:
            if value is not None:
                errors.add(name, f"does not apply to a {kind} provider")
            continue
        if name == "scopes":
            scopes = errors.check("scopes", check_scopes, value)
            if scopes is not None:
                clean["scopes"] = errors.check("scopes", _check_provider_scopes, kind, scopes)
        elif name == "default_roles":
            clean["default_roles"] = list(dict.fromkeys(value or ()))
        elif name in checks:
            clean[name] = errors.check(name, checks[name], value)
        else:
            raise TypeError(f"unknown identity provider field {name!r}")
    return clean


def _set_default_roles(provider: IdentityProvider, client: Client, names: list[str]) -> None:
    try:
        wanted = {get_role(client, name).id for name in names}
    except NotFound as exc:
        raise ValidationError("default_roles", str(exc)) from None
    query = sa.select(IdentityProviderRole.role_id).where(IdentityProviderRole.provider_id == provider.id)
    held = set(db.session.scalars(query))
    for role_id in held - wanted:
        db.session.delete(db.session.get(IdentityProviderRole, (provider.id, role_id)))
    for role_id in wanted - held:
        db.session.add(IdentityProviderRole(client_pk=client.id, provider_id=provider.id, role_id=role_id))


def _check_slug_free(client_id: str, slug: str) -> Client:
    """The client, if it has no identity provider with this slug yet."""
    client = get_client(client_id)
    if find_provider(client, slug) is not None:
        raise ValidationError("slug", f"client {client_id!r} already has an identity provider {slug!r}")
    return client


def create_provider(
    client_id: str,
    kind: str,
    *,
    slug: str | None = None,
    name: str | None = None,
    upstream_client_id: str,
    client_secret: str,
    scopes=None,
    issuer: str | None = None,
    web_url: str | None = None,
    api_url: str | None = None,
    enabled: bool = True,
    auto_create: bool = True,
    link_verified_email: bool = False,
    default_roles=(),
) -> IdentityProvider:
    """Offer sign-in through an upstream provider to the users of a client."""
    errors = Errors()
    kind = errors.check("type", check_kind, kind)
    errors.raise_if_any()
    slug = errors.check("slug", check_slug, slug if slug is not None else kind if kind != "oidc" else "")
    fields = {
        "name": name if name is not None else DEFAULT_NAMES.get(kind),
        "upstream_client_id": upstream_client_id,
        "client_secret": client_secret,
        "scopes": scopes if scopes else DEFAULT_SCOPES[kind],
        "issuer": issuer,
        "web_url": web_url,
        "api_url": api_url,
        "enabled": enabled,
        "auto_create": auto_create,
        "link_verified_email": link_verified_email,
        "default_roles": default_roles,
    }
    if kind == "google":
        fields["issuer"] = issuer or GOOGLE_ISSUER
    elif kind == "github":
        fields["web_url"] = web_url or GITHUB_WEB_URL
        fields["api_url"] = api_url or GITHUB_API_URL
    elif issuer is None:
        errors.add("issuer", "is required for an OpenID Connect provider: its issuer or discovery URL")
        del fields["issuer"]
    clean = _validate(kind, fields, errors)
    errors.raise_if_any()
    with transaction(conflict=lambda: _check_slug_free(client_id, slug)):
        client = _check_slug_free(client_id, slug)
        secret = clean.pop("client_secret")
        roles = clean.pop("default_roles")
        provider = IdentityProvider(
            client_pk=client.id,
            kind=kind,
            slug=slug,
            client_secret_encrypted=encrypt(secret, current_app.config["SECRET_KEY"], SECRET_PURPOSE),
            **clean,
        )
        db.session.add(provider)
        db.session.flush()
        _set_default_roles(provider, client, roles)
        created = audit.changes({}, {"type": kind, **_audited(provider)}, ("client_secret",))
        audit.record(audit.IDP_CREATED, client=client, idp=slug, changes=created)
    return provider


def update_provider(client_id: str, slug: str, /, **changes) -> IdentityProvider:
    """Change a provider's settings; its type and slug stay (they are in registered URLs and issued tokens)."""
    for fixed in ("kind", "type", "slug"):
        if fixed in changes:
            raise ValidationError(fixed, "cannot be changed; delete the provider and create another")
    changes = {name: value for name, value in changes.items() if value is not None}
    with transaction():
        client = get_client(client_id)
        provider = get_provider(client, slug)
        before = _audited(provider)
        errors = Errors()
        clean = _validate(provider.kind, changes, errors)
        errors.raise_if_any()
        if "client_secret" in clean:
            provider.client_secret_encrypted = encrypt(
                clean.pop("client_secret"), current_app.config["SECRET_KEY"], SECRET_PURPOSE
            )
        if "default_roles" in clean:
            _set_default_roles(provider, client, clean.pop("default_roles"))
        for name, value in clean.items():
            setattr(provider, name, value)
        changed = audit.changes(before, _audited(provider), ("client_secret",))
        if changed:
            audit.record(audit.IDP_UPDATED, client=client, idp=slug, changes=changed)
    return provider


def set_enabled(client_id: str, slug: str, enabled: bool) -> IdentityProvider:
    return update_provider(client_id, slug, enabled=enabled)


def delete_provider(client_id: str, slug: str) -> int:
    """Delete a provider with its linked identities (the users stay); return how many identities went."""
    with transaction():
        client = get_client(client_id)
        provider = get_provider(client, slug)
        linked = identity_counts(client).get(provider.id, 0)
        audit.record(audit.IDP_DELETED, client=client, idp=slug, name=provider.name, linked_identities=linked)
        db.session.delete(provider)
    return linked
