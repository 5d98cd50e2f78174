"""Tokens: authorization codes, JWT and opaque access tokens, refresh token families, ID tokens.

Issuing a JWT access token touches no table. Opaque access tokens, refresh tokens and codes are
stored as SHA-256 hashes. A refresh token rotates on every use; presenting a rotated one revokes
its whole family. A replayed authorization code revokes what it issued.
"""

import base64
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core.util import create_half_hash
from flask import current_app, g
from joserfc import jwt
from joserfc.errors import JoseError

from app.extensions import db
from app.models import (
    AccessToken,
    AuthorizationCode,
    BrowserSession,
    Client,
    RefreshToken,
    RevokedJti,
    User,
)
from app.services import audit
from app.services.client_cache import cached_client
from app.services.crypto import new_secret, sha256_hex
from app.services.keys import keyring
from app.services.users import role_names

ACCESS_TOKEN_PREFIX = "agat_"
REFRESH_TOKEN_PREFIX = "agrt_"
CODE_PREFIX = "agac_"
CODE_LIFETIME = 60
# Clock skew allowed when checking our own JWTs.
LEEWAY = 30

# The statements of the token endpoints' hot paths are built once, with bind parameters:
# composing a statement each time costs more than the database takes to run it.
_CODE_BY_HASH = sa.select(AuthorizationCode).where(AuthorizationCode.code_hash == sa.bindparam("digest"))
_REFRESH_BY_HASH = sa.select(RefreshToken).where(RefreshToken.token_hash == sa.bindparam("digest"))
_IS_DENIED = sa.select(sa.exists().where(RevokedJti.jti == sa.bindparam("jti")))
# A user token's user, and whether its jti is on the deny-list, in one round trip.
_JWT_USER = sa.select(User, sa.exists().where(RevokedJti.jti == sa.bindparam("jti"))).where(
    User.sub == sa.bindparam("sub"), User.client_pk == sa.bindparam("client_pk")
)
# Single-use marks, as plain table updates (no ORM bookkeeping; the row objects are not refreshed).
_CODES, _REFRESH_TOKENS = AuthorizationCode.__table__, RefreshToken.__table__
_USE_CODE = (
    _CODES.update()
    .where(_CODES.c.id == sa.bindparam("row_id"), _CODES.c.used_at.is_(None))
    .values(used_at=sa.bindparam("now"))
)
_USE_REFRESH = (
    _REFRESH_TOKENS.update()
    .where(
        _REFRESH_TOKENS.c.id == sa.bindparam("row_id"),
        _REFRESH_TOKENS.c.used_at.is_(None),
        _REFRESH_TOKENS.c.revoked_at.is_(None),
    )
    .values(used_at=sa.bindparam("now"))
)
# An opaque token with its client's public id and its user.
_OPAQUE = {
    model: sa.select(model, Client.client_id, User)
    .join(Client, Client.id == model.client_pk)
    .outerjoin(User, User.id == model.user_id)
    .where(model.token_hash == sa.bindparam("digest"))
    for model in (AccessToken, RefreshToken)
}


def _issuer() -> str:
    return current_app.config["AUTHGATE_ISSUER"]


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def sign(claims: dict, alg: str, typ: str = "JWT") -> str:
    key = keyring().signing_key(alg)
    header = {"alg": alg, "typ": typ, "kid": key.kid}
    return jwt.encode(header, claims, key.key, algorithms=[alg])


def peek_claims(token: str) -> dict:
    """Read a JWT we just signed without verifying it again."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- claims ----------------------------------------------------------------------------


def roles_of(user: User) -> list[str]:
    """The user's role names, read once per request however many tokens carry them."""
    memo = g.setdefault("authgate_roles", {})
    if user.id not in memo:
        memo[user.id] = role_names(user)
    return memo[user.id]


def user_claims(user: User, scope: str) -> dict:
    """Claims about the user for the ID token and userinfo: by scope, plus roles."""
    scopes = scope.split() if scope else []
    claims = {"sub": user.sub}
    if "profile" in scopes:
        claims.update(
            name=user.full_name or user.username,
            given_name=user.first_name or None,
            family_name=user.last_name or None,
            preferred_username=user.username,
            updated_at=int(user.updated_at.timestamp()),
        )
    if "email" in scopes and user.email:
        claims.update(email=user.email, email_verified=user.email_verified)
    claims["roles"] = roles_of(user)
    return {k: v for k, v in claims.items() if v is not None}


def access_token_claims(client: Client, user: User | None, scope: str, now: int) -> dict:
    """RFC 9068 claims; `roles` for tokens issued to a user."""
    claims = {
        "iss": _issuer(),
        "sub": user.sub if user else client.client_id,
        "aud": client.client_id,
        "exp": now + client.access_token_lifetime,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "client_id": client.client_id,
        "scope": scope,
    }
    if user is not None:
        claims["roles"] = roles_of(user)
    return claims


@dataclass
class SignIn:
    """How and when the user signed in: carried by codes and refresh tokens into ID tokens."""

    auth_time: int
    amr: list[str]
    session_id: str | None
    idp: str | None = None
    nonce: str | None = None


def id_token(client: Client, user: User, scope: str, sign_in: SignIn, access_token: str | None) -> str:
    now = int(time.time())
    alg = client.signing_alg
    claims = {
        "iss": _issuer(),
        "aud": client.client_id,
        "iat": now,
        "exp": now + client.access_token_lifetime,
        "auth_time": sign_in.auth_time,
    }
    if sign_in.nonce:
        claims["nonce"] = sign_in.nonce
    if sign_in.session_id:
        claims["sid"] = sign_in.session_id
    if sign_in.amr:
        claims["amr"] = sign_in.amr
    if sign_in.idp:
        claims["idp"] = sign_in.idp
    if access_token:
        claims["at_hash"] = create_half_hash(access_token, alg).decode()
    claims.update(user_claims(user, scope))
    return sign(claims, alg)


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
        db.session.add(
            AccessToken(
                token_hash=sha256_hex(access),
                family_id=family_id,
                client_pk=client.id,
                user_id=user.id if user else None,
                scope=token["scope"],
                jti=jti,
                expires_at=expires_at,
            )
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
        db.session.add(
            RefreshToken(
                token_hash=sha256_hex(token["refresh_token"]),
                family_id=family_id,
                client_pk=client.id,
                user_id=user.id,
                scope=token["scope"],
                session_id=source.session_id,
                auth_time=source.auth_time,
                amr=source.amr,
                idp=source.idp,
                expires_at=_at(now + client.refresh_token_lifetime),
                access_jti=deny_jti,
                access_expires_at=expires_at if deny_jti else None,
            )
        )
    if code is not None:
        code.family_id = family_id
        code.access_jti = deny_jti
        code.access_expires_at = expires_at if deny_jti else None


def sign_in_of(source: AuthorizationCode | RefreshToken) -> SignIn:
    return SignIn(
        auth_time=source.auth_time,
        amr=list(source.amr or []),
        session_id=source.session_id,
        idp=source.idp,
        nonce=getattr(source, "nonce", None),
    )


# --- authorization codes ---------------------------------------------------------------


def new_code() -> str:
    return new_secret(CODE_PREFIX)


def store_code(
    code: str,
    client: Client,
    user: User,
    redirect_uri: str,
    scope: str,
    nonce: str | None,
    code_challenge: str | None,
    code_challenge_method: str | None,
    session: BrowserSession | None,
) -> None:
    db.session.add(
        AuthorizationCode(
            code_hash=sha256_hex(code),
            client_pk=client.id,
            user_id=user.id,
            redirect_uri=redirect_uri,
            scope=scope,
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            session_id=session.id if session else None,
            auth_time=session.auth_time if session else int(time.time()),
            amr=session.amr if session else [],
            idp=session.idp if session else None,
            expires_at=datetime.now(UTC) + timedelta(seconds=CODE_LIFETIME),
        )
    )
    db.session.commit()


def find_code(code: str, client: Client) -> AuthorizationCode | None:
    """Return the unused, unexpired code issued to this client; a replay revokes what it issued."""
    if not isinstance(code, str) or not code:
        return None
    row = db.session.scalar(_CODE_BY_HASH, {"digest": sha256_hex(code)})
    if row is None or row.client_pk != client.id:
        return None
    if row.used_at is not None:
        _revoke_code_grant(row, client)
        return None
    if row.expires_at <= datetime.now(UTC):
        return None
    return row


def redeem_code(code: str, client: Client, redirect_uri: str, code_verifier: str) -> AuthorizationCode | None:
    """Exchange a code in-process, with the token endpoint's checks; None when any fails.

    The console signs its admins in through this server's own hosted login and redeems the
    code here rather than over HTTP: same client, unused and unexpired code, same redirect
    URI, PKCE S256. The code is used up only when every check passed.
    """
    row = find_code(code, client)
    if row is None or row.redirect_uri != redirect_uri or row.code_challenge_method != "S256":
        return None
    if not isinstance(code_verifier, str) or not code_verifier:
        return None
    challenge = create_s256_code_challenge(code_verifier)
    if not hmac.compare_digest(challenge, row.code_challenge or ""):
        return None
    if not consume_code(row):
        db.session.rollback()
        return None
    db.session.commit()
    return row


def consume_code(row: AuthorizationCode) -> bool:
    """Mark the code used; False when another request used it first."""
    return db.session.execute(_USE_CODE, {"row_id": row.id, "now": datetime.now(UTC)}).rowcount == 1


def _revoke_code_grant(row: AuthorizationCode, client: Client) -> None:
    if row.family_id:
        revoke_family(row.family_id, commit=False)
    if row.access_jti and row.access_expires_at:
        deny(row.access_jti, row.access_expires_at)
    audit.record(audit.CODE_REPLAYED, client=client, user=db.session.get(User, row.user_id), commit=False)
    db.session.commit()


# --- refresh tokens --------------------------------------------------------------------


def find_refresh_token(value: str, client: Client) -> RefreshToken | None:
    """Return the live refresh token of this client; a rotated one revokes its family."""
    if not isinstance(value, str) or not value:
        return None
    row = db.session.scalar(_REFRESH_BY_HASH, {"digest": sha256_hex(value)})
    if row is None or row.client_pk != client.id or row.revoked_at is not None:
        return None
    if row.used_at is not None:
        report_reuse(row, client)
        return None
    if row.expires_at <= datetime.now(UTC):
        return None
    return row


def rotate_refresh_token(row: RefreshToken) -> bool:
    """Mark the token used; False when another request rotated it first."""
    return db.session.execute(_USE_REFRESH, {"row_id": row.id, "now": datetime.now(UTC)}).rowcount == 1


def report_reuse(row: RefreshToken, client: Client) -> None:
    """A rotated refresh token came back: someone holds a copy. End the whole family."""
    db.session.rollback()
    revoked = revoke_family(row.family_id, commit=False)
    audit.record(
        audit.REFRESH_TOKEN_REUSED,
        client=client,
        user=db.session.get(User, row.user_id),
        commit=False,
        family=row.family_id[:8],
        revoked=revoked,
    )
    db.session.commit()


def revoke_family(family_id: str, commit: bool = True) -> int:
    """Revoke every refresh and opaque access token of a family, and deny its JWT access tokens."""
    now = datetime.now(UTC)
    rows = db.session.execute(
        sa.select(RefreshToken.access_jti, RefreshToken.access_expires_at).where(
            RefreshToken.family_id == family_id,
            RefreshToken.access_jti.is_not(None),
            RefreshToken.access_expires_at > now,
        )
    ).all()
    for jti, expires_at in rows:
        deny(jti, expires_at)
    revoked = db.session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    db.session.execute(
        sa.update(AccessToken)
        .where(AccessToken.family_id == family_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if commit:
        db.session.commit()
    return revoked


# --- the deny-list of JWTs -------------------------------------------------------------


def deny(jti: str, expires_at: datetime) -> None:
    if db.session.get(RevokedJti, jti) is None:
        db.session.add(RevokedJti(jti=jti, expires_at=expires_at))


def is_denied(jti: str) -> bool:
    return bool(db.session.scalar(_IS_DENIED, {"jti": jti}))


def purge_expired() -> dict[str, int]:
    """Delete what can no longer be used; safe to run at any time (`flask purge`)."""
    now = datetime.now(UTC)
    # Used codes are kept a while after expiry so a late replay is still recognised.
    counts = {
        "codes": db.session.execute(
            sa.delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - timedelta(days=1))
        ).rowcount,
        "access_tokens": db.session.execute(sa.delete(AccessToken).where(AccessToken.expires_at < now)).rowcount,
        "refresh_tokens": db.session.execute(sa.delete(RefreshToken).where(RefreshToken.expires_at < now)).rowcount,
        "revoked_jtis": db.session.execute(sa.delete(RevokedJti).where(RevokedJti.expires_at < now)).rowcount,
        "sessions": db.session.execute(sa.delete(BrowserSession).where(BrowserSession.expires_at < now)).rowcount,
    }
    db.session.commit()
    return counts


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
            "iss": _issuer(),
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


def decode_access_jwt(value: str) -> dict | None:
    """Verify one of our JWT access tokens: signature by a published key, iss, exp, typ."""
    try:
        header = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
        key = keyring().by_kid(header.get("kid", ""))
        if key is None or header.get("typ") != "at+jwt":
            return None
        claims = jwt.decode(value, key.key, algorithms=[key.alg]).claims
    except (JoseError, ValueError, TypeError, UnicodeDecodeError):
        return None
    if claims.get("iss") != _issuer() or not isinstance(claims.get("exp"), int):
        return None
    if claims["exp"] + LEEWAY < time.time():
        return None
    return claims


def _inspect_jwt(value: str) -> TokenInfo | None:
    claims = decode_access_jwt(value)
    if claims is None:
        return None
    client = cached_client(claims["client_id"])
    if client is None:
        return None
    user = None
    if "roles" in claims:
        found = db.session.execute(
            _JWT_USER, {"jti": claims["jti"], "sub": claims["sub"], "client_pk": client.id}
        ).first()
        if found is None or found[1] or not found[0].enabled:
            return None
        user = found[0]
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
    if value.startswith(ACCESS_TOKEN_PREFIX):
        model = AccessToken
    elif value.startswith(REFRESH_TOKEN_PREFIX):
        model = RefreshToken
    else:
        return None
    found = db.session.execute(_OPAQUE[model], {"digest": sha256_hex(value)}).first()
    if found is None:
        return None
    row, client_id, user = found
    if row.revoked_at is not None or row.expires_at <= datetime.now(UTC):
        return None
    if model is RefreshToken and row.used_at is not None:
        return None
    if row.user_id is not None and (user is None or not user.enabled):
        return None
    kind = "access_token" if model is AccessToken else "refresh_token"
    return TokenInfo(
        kind, row.client_pk, client_id, user.sub if user else client_id, row.scope,
        int(row.expires_at.timestamp()), int(row.created_at.timestamp()), getattr(row, "jti", None),
        user, roles_of(user) if user else None, row,
    )  # fmt: skip


def revoke(value: str, client: Client) -> None:
    """Revoke a token of this client; a token of another client, or no token at all, is left alone."""
    info = inspect(value)
    if info is None or info.client_pk != client.id:
        return
    if isinstance(info.row, RefreshToken):
        revoke_family(info.row.family_id, commit=False)
    elif isinstance(info.row, AccessToken):
        info.row.revoked_at = datetime.now(UTC)
    else:
        deny(info.jti, _at(info.exp))
    db.session.commit()
