"""Clients: registration, validation, secrets."""

import json
import re
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from app.capabilities import (
    AUTH_METHODS,
    GRANT_TYPES,
    SECRET_AUTH_METHODS,
    SIGNING_ALGS,
    STANDARD_SCOPES,
    TOKEN_FORMATS,
)
from app.extensions import db
from app.models import Client, Role, User
from app.services import Errors, NotFound, ValidationError, audit, transaction
from app.services.client_cache import client_cache, find_client
from app.services.crypto import CLIENT_SECRET_PREFIX, matches_hash, new_secret, sha256_hex
from app.services.mfa import check_policy
from app.services.pagination import Page, like_pattern, paginate
from app.services.validation import (
    as_list,
    check_bool,
    check_redirect_uris,
    check_scopes,
    check_seconds,
    check_text,
    choice,
    fail,
    library_reason,
    unique,
)

CONSOLE_CLIENT_ID = "authgate-console"
# The role that lets a user of the console's client administer AuthGate.
CONSOLE_ADMIN_ROLE = "ROLE_AUTHGATE_ADMIN"


ACCESS_TOKEN_LIFETIME = (60, 24 * 3600)
# refresh_token_lifetime is the idle timeout: each rotation's token lives this long. The family
# as a whole ends refresh_token_max_lifetime after its code was exchanged, however often it is used.
REFRESH_TOKEN_LIFETIME = (300, 90 * 86400)
REFRESH_TOKEN_MAX_LIFETIME = (300, 365 * 86400)

CLIENT_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62})[a-z0-9]$")

DEFAULTS: dict[str, Any] = {
    "description": "",
    "token_endpoint_auth_methods": ["client_secret_basic"],
    "grant_types": ["authorization_code", "refresh_token"],
    "redirect_uris": [],
    "post_logout_redirect_uris": [],
    "scopes": list(STANDARD_SCOPES),
    "access_token_lifetime": 3600,
    "refresh_token_lifetime": 30 * 86400,
    "refresh_token_max_lifetime": 90 * 86400,
    "require_pkce": True,
    "token_format": "jwt",
    "signing_alg": "RS256",
    "require_consent": False,
    "jwks": None,
    "allow_registration": False,
    "require_verified_email": False,
    "mfa_policy": "off",
}
FIELDS = ("client_id", "name", *DEFAULTS)
# The audit log records only that these were set, changed or removed: the secret (by its hash) and
# key sets, which are public but too long to read there.
UNSHOWN = ("client_secret", "jwks")


# --- field validators: each takes raw input and returns the normalised value ----------


def check_client_id(value) -> str:
    value = (value or "").strip()
    if not value:
        fail("is required")
    if not CLIENT_ID_RE.match(value):
        fail(
            "must be 3 to 64 characters: lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )
    return value


def check_name(value) -> str:
    return check_text(value, 120, required="is required")


def check_description(value) -> str:
    return check_text(value, 2000)


def check_auth_methods(value) -> list[str]:
    methods = unique(as_list(value))
    if not methods:
        fail("choose at least one authentication method")
    unknown = [m for m in methods if m not in AUTH_METHODS]
    if unknown:
        fail(f"unknown method {unknown[0]!r}; use one of {', '.join(AUTH_METHODS)}")
    if "none" in methods and len(methods) > 1:
        fail("'none' (public client) cannot be combined with other methods")
    return methods


def check_grant_types(value) -> list[str]:
    grants = unique(as_list(value))
    if not grants:
        fail("choose at least one grant type")
    unknown = [g for g in grants if g not in GRANT_TYPES]
    if unknown:
        fail(f"unknown grant type {unknown[0]!r}; use one of {', '.join(GRANT_TYPES)}")
    return grants


def check_access_token_lifetime(value) -> int:
    return check_seconds(value, *ACCESS_TOKEN_LIFETIME, "1 minute to 24 hours")


def check_refresh_token_lifetime(value) -> int:
    return check_seconds(value, *REFRESH_TOKEN_LIFETIME, "5 minutes to 90 days")


def check_refresh_token_max_lifetime(value) -> int:
    return check_seconds(value, *REFRESH_TOKEN_MAX_LIFETIME, "5 minutes to 365 days")


def check_jwks(value) -> dict | None:
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            fail("must be a JSON Web Key Set")
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        fail('must be a JSON Web Key Set: {"keys": [...]} with at least one key')
    for jwk in value["keys"]:
        if not isinstance(jwk, dict):
            fail("each key must be a JSON object")
        if any(member in jwk for member in ("d", "p", "q", "k")):
            fail("must hold public keys only; never register a private key")
    try:
        KeySet.import_key_set(cast(KeySetSerialization, value))
    except (JoseError, ValueError, TypeError) as exc:
        fail(f"is not a valid key set: {library_reason(exc)}")
    return value


def check_default_roles(value) -> list[str]:
    from app.services.roles import check_role_names

    return check_role_names(value)


VALIDATORS = {
    "client_id": check_client_id,
    "name": check_name,
    "description": check_description,
    "token_endpoint_auth_methods": check_auth_methods,
    "grant_types": check_grant_types,
    "redirect_uris": check_redirect_uris,
    "post_logout_redirect_uris": check_redirect_uris,
    "scopes": check_scopes,
    "access_token_lifetime": check_access_token_lifetime,
    "refresh_token_lifetime": check_refresh_token_lifetime,
    "refresh_token_max_lifetime": check_refresh_token_max_lifetime,
    "require_pkce": check_bool,
    "token_format": choice(TOKEN_FORMATS),
    "signing_alg": choice(SIGNING_ALGS),
    "require_consent": check_bool,
    "jwks": check_jwks,
    "allow_registration": check_bool,
    "require_verified_email": check_bool,
    # Not a column: the client's roles marked `is_default`, given to users who register themselves.
    "default_roles": check_default_roles,
    "mfa_policy": check_policy,
}


def validate_fields(fields: dict, errors: Errors | None = None) -> dict:
    """Normalise the given fields one by one; errors name the field (for a wizard step)."""
    own = errors is None
    errors = errors or Errors()
    clean = {}
    for name, value in fields.items():
        if name not in VALIDATORS:
            raise TypeError(f"unknown client field {name!r}")
        result = errors.check(name, VALIDATORS[name], value)
        if name not in errors.errors:
            clean[name] = result
    if own:
        errors.raise_if_any()
    return clean


def validate_client(fields: dict) -> dict:
    """Validate a whole client: every field, then the rules that tie fields together."""
    errors = Errors()
    clean = validate_fields({**DEFAULTS, **fields}, errors)
    for required in ("client_id", "name"):
        if required not in fields:
            errors.add(required, "is required")
    methods = clean.get("token_endpoint_auth_methods")
    grants = clean.get("grant_types")
    if methods and grants:
        public = methods == ["none"]
        if public and "client_credentials" in grants:
            errors.add(
                "grant_types",
                "client_credentials needs a confidential client; a public client has no secret",
            )
        if "refresh_token" in grants and "authorization_code" not in grants:
            errors.add("grant_types", "refresh_token is only issued with authorization_code")
        if "authorization_code" in grants and not clean.get("redirect_uris", True):
            errors.add("redirect_uris", "add at least one redirect URI for authorization_code")
        if public and clean.get("require_pkce") is False:
            errors.add("require_pkce", "public clients must use PKCE")
        if "private_key_jwt" in methods and "jwks" in clean and not clean["jwks"]:
            errors.add("jwks", "private_key_jwt needs the client's public keys (a JWK Set)")
    access = clean.get("access_token_lifetime")
    refresh = clean.get("refresh_token_lifetime")
    if access and refresh and refresh < access:
        errors.add("refresh_token_lifetime", "must be at least the access token lifetime")
    most = clean.get("refresh_token_max_lifetime")
    if refresh and most and most < refresh:
        errors.add("refresh_token_max_lifetime", "must be at least the refresh token idle timeout")
    errors.raise_if_any()
    return clean


def needs_secret(methods: list[str]) -> bool:
    return bool(SECRET_AUTH_METHODS.intersection(methods))


# --- queries ---------------------------------------------------------------------------


def get_client(client_id: str) -> Client:
    client = find_client(client_id)
    if client is None:
        raise NotFound(f"no client {client_id!r}")
    return client


def list_clients(search: str | None = None, page: int = 1, per_page: int = 50) -> Page:
    query = sa.select(Client).order_by(Client.client_id)
    if search:
        pattern = like_pattern(search.strip())
        query = query.where(
            sa.or_(Client.client_id.ilike(pattern, escape="\\"), Client.name.ilike(pattern, escape="\\"))
        )
    return paginate(query, page, per_page)


def check_available(client_id: str) -> None:
    """Refuse a client_id that another client already has."""
    if find_client(client_id) is not None:
        raise ValidationError("client_id", f"{client_id!r} is already taken")


def choices() -> list[tuple[str, str]]:
    """Every client's (client_id, name), for a picker; two columns, no full rows."""
    query = sa.select(Client.client_id, Client.name).order_by(Client.client_id)
    return [(client_id, name) for client_id, name in db.session.execute(query)]


def totals() -> dict[str, int]:
    """How many clients, users and roles there are in all."""
    return {
        "clients": db.session.scalar(sa.select(sa.func.count()).select_from(Client)) or 0,
        "users": db.session.scalar(sa.select(sa.func.count()).select_from(User)) or 0,
        "roles": db.session.scalar(sa.select(sa.func.count()).select_from(Role)) or 0,
    }


def usage_of(clients: list[Client]) -> dict[int, dict[str, int]]:
    """`usage` for a page of clients at once (two grouped queries), by client pk."""
    pks = [client.id for client in clients]
    result = {pk: {"users": 0, "roles": 0} for pk in pks}
    if not pks:
        return result
    for kind, model in (("users", User), ("roles", Role)):
        query = sa.select(model.client_pk, sa.func.count()).where(model.client_pk.in_(pks)).group_by(model.client_pk)
        for pk, count in db.session.execute(query):
            result[pk][kind] = count
    return result


def usage(client: Client) -> dict[str, int]:
    """Count what would go with the client if it were deleted."""
    users = db.session.scalar(sa.select(sa.func.count()).where(User.client_pk == client.id))
    roles = db.session.scalar(sa.select(sa.func.count()).where(Role.client_pk == client.id))
    return {"users": users or 0, "roles": roles or 0}


def check_default_roles_exist(client_id: str, value) -> None:
    """Refuse names that are none of the client's roles: an existing client's defaults are chosen, not made."""
    from app.services.roles import check_roles_exist

    check_roles_exist(get_client(client_id), check_default_roles(value))


def default_roles(client: Client) -> list[str]:
    from app.services.roles import default_role_names

    return default_role_names(client)


def audited(client: Client) -> dict:
    """The client's settings as the audit log compares them; the secret's hash stands for the secret."""
    return {
        **{name: getattr(client, name) for name in FIELDS},
        "default_roles": default_roles(client),
        "client_secret": client.secret_hash,
    }


def to_dict(client: Client) -> dict:
    """The client as a script would want it; never the secret or its hash."""
    data = {name: getattr(client, name) for name in FIELDS}
    data["default_roles"] = default_roles(client)
    data["public"] = client.is_public
    data["created_at"] = client.created_at.isoformat()
    return data


# --- writes ----------------------------------------------------------------------------


def create_client(**fields) -> tuple[Client, str | None]:
    """Register a client; return it with its secret, which is shown only now.

    `default_roles` names the roles self-registered users get; those that do not exist yet are
    created with the client.
    """
    from app.services.roles import set_default_roles

    clean = validate_client(fields)
    defaults = clean.pop("default_roles", [])
    with transaction(conflict=lambda: check_available(clean["client_id"])):
        check_available(clean["client_id"])
        client = Client(**clean)
        secret = None
        if needs_secret(clean["token_endpoint_auth_methods"]):
            secret = new_secret(CLIENT_SECRET_PREFIX)
            client.secret_hash = sha256_hex(secret)
            client.secret_rotated_at = datetime.now(UTC)
        db.session.add(client)
        db.session.flush()
        if defaults:
            set_default_roles(client, defaults, create_missing=True)
        audit.record(audit.CLIENT_CREATED, client=client, changes=audit.changes({}, audited(client), UNSHOWN))
    return client, secret


def update_client(client_id: str, /, **changes) -> tuple[Client, str | None]:
    """Change a client's settings; return a new secret if it now needs one and had none.

    `default_roles` replaces the client's default roles; each must be one of its roles already.
    """
    from app.services.roles import set_default_roles

    if "client_id" in changes and changes["client_id"] != client_id:
        raise ValidationError("client_id", "cannot be changed; applications already use it")
    with transaction():
        client = get_client(client_id)
        before = audited(client)
        current = {name: getattr(client, name) for name in FIELDS}
        clean = validate_client({**current, **changes})
        if "default_roles" in clean:
            set_default_roles(client, clean.pop("default_roles"))
        for name, value in clean.items():
            setattr(client, name, value)
        secret = None
        if not needs_secret(client.token_endpoint_auth_methods):
            client.secret_hash = None
        elif client.secret_hash is None:
            secret = new_secret(CLIENT_SECRET_PREFIX)
            client.secret_hash = sha256_hex(secret)
            client.secret_rotated_at = datetime.now(UTC)
        changed = audit.changes(before, audited(client), UNSHOWN)
        if changed:
            audit.record(audit.CLIENT_UPDATED, client=client, changes=changed)
    client_cache().invalidate(client_id)
    return client, secret


def rotate_secret(client_id: str) -> str:
    """Replace the client's secret; the old one stops working at once."""
    with transaction():
        client = get_client(client_id)
        if not needs_secret(client.token_endpoint_auth_methods):
            raise ValidationError("client_id", f"{client_id!r} does not authenticate with a client secret")
        secret = new_secret(CLIENT_SECRET_PREFIX)
        client.secret_hash = sha256_hex(secret)
        client.secret_rotated_at = datetime.now(UTC)
        audit.record(audit.CLIENT_SECRET_ROTATED, client=client, changes={"client_secret": "rotated"})
    client_cache().invalidate(client_id)
    return secret


def check_deletable(client_id: str) -> None:
    if client_id == CONSOLE_CLIENT_ID:
        raise ValidationError("client_id", "the console's own client cannot be deleted")


def delete_client(client_id: str) -> dict[str, int]:
    """Delete a client with its users and roles; return how many went with it."""
    check_deletable(client_id)
    with transaction():
        client = get_client(client_id)
        gone = usage(client)
        # Not tied to the row it outlives (the database would empty the link): the client is named instead.
        audit.record(
            audit.CLIENT_DELETED, client_id=client.client_id, name=client.name, users=gone["users"], roles=gone["roles"]
        )
        db.session.delete(client)
    client_cache().invalidate(client_id)
    return gone


def verify_secret(client: Client, secret: str) -> bool:
    return matches_hash(secret, client.secret_hash)
