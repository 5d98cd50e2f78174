"""Access tokens: issuing JWT or opaque ones, reading any token of ours back, revoking.

Issuing a JWT access token touches no table, unless a refresh token or code could later revoke
it. Opaque access tokens are stored as SHA-256 hashes.
"""

import functools
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import sqlalchemy as sa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import GuestProtocol, Key

from app.capabilities import SIGNING_ALGS
from app.extensions import db
from app.models import AccessToken, AuthorizationCode, Client, RefreshToken, RevokedJti, Role, User, UserRole
from app.services.client_cache import cached_client
from app.services.crypto import new_secret, sha256_hex
from app.services.keys import keyring
from app.services.tokens.claims import access_token_claims, issuer, peek_claims, remember_roles, roles_of, sign
from app.services.tokens.denylist import deny, is_denied
from app.services.tokens.refresh import REFRESH_TOKEN_PREFIX, is_session_bound, revoke_family

ACCESS_TOKEN_PREFIX = "agat_"
# Plain INSERTs: nothing reads the new rows back in the request that writes them, so the ORM's
# unit of work (an object, its state, a flush) is not needed.
_INSERT_ACCESS = sa.insert(cast(sa.Table, AccessToken.__table__))
_INSERT_REFRESH = sa.insert(cast(sa.Table, RefreshToken.__table__))
# Clock skew allowed when checking our own JWTs.
LEEWAY = 30

# A user token's user, whether its jti is on the deny-list, and the user's role names (a row per
# role, as `users.role_names` orders them), in one round trip.
_JWT_USER = (
    sa.select(User, sa.exists().where(RevokedJti.jti == sa.bindparam("jti")), Role.name)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .outerjoin(Role, Role.id == UserRole.role_id)
    .where(User.sub == sa.bindparam("sub"), User.client_pk == sa.bindparam("client_pk"))
    .order_by(Role.name)
)
# An opaque token with its client's public id and its user.
_OPAQUE: dict[type, sa.Select] = {
    model: sa.select(model, Client.client_id, User)
    .join(Client, Client.id == model.client_pk)
    .outerjoin(User, User.id == model.user_id)
    .where(model.token_hash == sa.bindparam("digest"))
    for model in (AccessToken, RefreshToken)
}


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- issuing ---------------------------------------------------------------------------


def generate(client: Client, user: User | None, scope: str, include_refresh_token: bool) -> dict:
    """Make the token response; nothing is stored here (see `save`)."""
    now = int(time.time())
    token = {"token_type": "Bearer", "expires_in": client.access_token_lifetime, "scope": scope}
    if client.token_format == "jwt":
        token["access_token"] = sign(access_token_claims(client, user, scope, now), client.signing_alg, "at+jwt")
    else:
        token["access_token"] = new_secret(ACCESS_TOKEN_PREFIX)
    if include_refresh_token:
        token["refresh_token"] = new_secret(REFRESH_TOKEN_PREFIX)
    return token


def save(
    token: dict,
    client: Client,
    user: User | None,
    code: AuthorizationCode | None = None,
    previous: RefreshToken | None = None,
) -> None:
    """Store what must be stored of a token response, in the caller's transaction."""
    now = int(time.time())
    expires_at = _at(now + client.access_token_lifetime)
    family_id = previous.family_id if previous else (str(uuid.uuid4()) if code else None)
    access = token["access_token"]
    if client.token_format == "opaque":
        jti = secrets.token_urlsafe(16)
        db.session.execute(
            _INSERT_ACCESS,
            {
                "token_hash": sha256_hex(access),
                "family_id": family_id,
                "client_pk": client.id,
                "user_id": user.id if user else None,
                "scope": token["scope"],
                "jti": jti,
                "expires_at": expires_at,
            },
        )
        deny_jti = None
    elif code is None and "refresh_token" not in token:
        return  # a JWT for a client: nothing to store, nothing that could revoke it later
    else:
        claims = peek_claims(access)
        jti, expires_at = claims["jti"], _at(claims["exp"])
        deny_jti = jti
    source = code or previous
    if "refresh_token" in token:
        if user is None or source is None:
            raise ValueError("a refresh token needs the user and the code or token it continues")
        # Each rotation lives the idle timeout, never past the family's absolute end.
        family_end = previous.family_expires_at if previous else _at(now + client.refresh_token_max_lifetime)
        db.session.execute(
            _INSERT_REFRESH,
            {
                "token_hash": sha256_hex(token["refresh_token"]),
                "family_id": family_id,
                "client_pk": client.id,
                "user_id": user.id,
                # The grant's scope, even when this refresh asked for less (RFC 6749 6): whether the
                # family is offline never changes.
                "scope": previous.scope if previous else token["scope"],
                "session_id": source.session_id,
                "auth_time": source.auth_time,
                "amr": source.amr,
                "idp": source.idp,
                "expires_at": min(_at(now + client.refresh_token_lifetime), family_end),
                "family_expires_at": family_end,
                "access_jti": deny_jti,
                "access_expires_at": expires_at if deny_jti else None,
            },
        )
    if code is not None:
        code.family_id = family_id
        code.access_jti = deny_jti
        code.access_expires_at = expires_at if deny_jti else None


def issued_before_change(user: User, iat: int) -> bool:
    """Whether a token issued at `iat` predates the user's last credential change.

    `iat` has whole seconds: a token of the very second of the change counts as before it.
    """
    changed = user.credentials_changed_at
    return changed is not None and iat <= int(changed.timestamp())


# --- reading tokens back (introspection, userinfo, revocation) --------------------------


@dataclass
class TokenInfo:
    kind: str  # "access_token" or "refresh_token"
    client_pk: int
    client_id: str
    sub: str
    scope: str
    exp: int
    iat: int
    jti: str | None = None
    user: User | None = None
    roles: list[str] | None = None
    row: object = field(default=None, repr=False)

    def introspection(self) -> dict:
        data = {
            "active": True,
            "iss": issuer(),
            "client_id": self.client_id,
            "sub": self.sub,
            "aud": self.client_id,
            "scope": self.scope,
            "exp": self.exp,
            "iat": self.iat,
            "token_type": "Bearer" if self.kind == "access_token" else "refresh_token",
        }
        if self.jti:
            data["jti"] = self.jti
        if self.user is not None:
            data["username"] = self.user.username
        if self.roles is not None:
            data["roles"] = self.roles
        return data


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and not value.startswith((ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX))


class _NotOurs(Exception):
    """The token names no key of ours, or is not an access token."""


def _published_key(token: GuestProtocol) -> Key:
    """Called by joserfc with the token's header: the published key it names, for an at+jwt only."""
    header = token.headers()
    key = keyring().by_kid(header.get("kid") or "")
    if key is None or header.get("typ") != "at+jwt" or header.get("alg") != key.alg:
        raise _NotOurs
    return key.key


@functools.lru_cache(maxsize=8)
def _claims_registry(expected_issuer: str) -> jwt.JWTClaimsRegistry:
    """The claims every access token of ours must carry (built once per issuer)."""
    return jwt.JWTClaimsRegistry(
        leeway=LEEWAY,
        iss={"essential": True, "value": expected_issuer},
        iat={"essential": True},
        exp={"essential": True},
        sub={"essential": True},
        jti={"essential": True},
        client_id={"essential": True},
    )


def decode_access_jwt(value: str) -> dict | None:
    """Verify one of our JWT access tokens (signature by a published key, typ, iss, exp); None if not valid."""
    try:
        token = jwt.decode(value, _published_key, algorithms=list(SIGNING_ALGS))
        _claims_registry(issuer()).validate(token.claims)
    except (_NotOurs, JoseError, ValueError, TypeError, KeyError, RecursionError):
        return None
    if not isinstance(token.claims.get("exp"), int) or not isinstance(token.claims.get("client_id"), str):
        return None
    return token.claims


def _inspect_jwt(value: str) -> TokenInfo | None:
    claims = decode_access_jwt(value)
    if claims is None:
        return None
    client = cached_client(claims["client_id"])
    if client is None:
        return None
    user = None
    if "roles" in claims:
        rows = db.session.execute(_JWT_USER, {"jti": claims["jti"], "sub": claims["sub"], "client_pk": client.id}).all()
        if not rows or rows[0][1] or not rows[0][0].enabled or issued_before_change(rows[0][0], claims["iat"]):
            return None
        user = rows[0][0]
        remember_roles(user, [name for _, _, name in rows if name is not None])
    elif is_denied(claims["jti"]):
        return None
    return TokenInfo(
        "access_token", client.id, client.client_id, claims["sub"], claims.get("scope", ""),
        claims["exp"], claims["iat"], claims["jti"], user, claims.get("roles"),
    )  # fmt: skip


def inspect(value: str, hint: str | None = None) -> TokenInfo | None:
    """Return what an active token of ours says, or None for anything not active."""
    if not isinstance(value, str) or not value:
        return None
    if looks_like_jwt(value):
        return _inspect_jwt(value)
    model: type[AccessToken] | type[RefreshToken]
    if value.startswith(ACCESS_TOKEN_PREFIX):
        model = AccessToken
    elif value.startswith(REFRESH_TOKEN_PREFIX):
        model = RefreshToken
    else:
        return None
    found = db.session.execute(_OPAQUE[model], {"digest": sha256_hex(value)}).first()
    if found is None:
        return None
    row: AccessToken | RefreshToken = found[0]
    client_id, user = found[1], found[2]
    if row.revoked_at is not None or row.expires_at <= datetime.now(UTC):
        return None
    if isinstance(row, RefreshToken) and (row.used_at is not None or _session_ended(row)):
        return None
    if row.user_id is not None and (user is None or not user.enabled):
        return None
    kind = "access_token" if isinstance(row, AccessToken) else "refresh_token"
    return TokenInfo(
        kind, row.client_pk, client_id, user.sub if user else client_id, row.scope,
        int(row.expires_at.timestamp()), int(row.created_at.timestamp()), getattr(row, "jti", None),
        user, roles_of(user) if user else None, row,
    )  # fmt: skip


def _session_ended(row: RefreshToken) -> bool:
    """A session-bound refresh token whose browser session is over: inactive, as the refresh grant finds it."""
    if not is_session_bound(row):
        return False
    from app.services.sessions import find_live  # sessions imports this package

    return find_live(row.session_id) is None


def revoke(value: str, client: Client) -> None:
    """Revoke a token of this client, in the caller's transaction; another client's token, or none, is left alone."""
    info = inspect(value)
    if info is None or info.client_pk != client.id:
        return
    if isinstance(info.row, RefreshToken):
        revoke_family(info.row.family_id)
    elif isinstance(info.row, AccessToken):
        info.row.revoked_at = datetime.now(UTC)
    elif info.jti:
        deny(info.jti, _at(info.exp))
