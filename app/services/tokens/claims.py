"""What tokens say: signing, the user's claims, RFC 9068 access-token claims and ID tokens."""

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from authlib.oidc.core.util import create_half_hash
from flask import current_app, g

from app.models import AuthorizationCode, Client, RefreshToken, User
from app.services.keys import keyring
from app.services.mfa import acr_of
from app.services.tokens import jws
from app.services.users import role_names


def issuer() -> str:
    return current_app.config["AUTHGATE_ISSUER"]


def sign(claims: dict, alg: str, typ: str = "JWT") -> str:
    key = keyring().signing_key(alg)
    return jws.sign(claims, key.kid, key.key, alg, typ)


def peek_claims(token: str) -> dict:
    """Read a JWT we just signed without verifying it again."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def roles_of(user: User) -> list[str]:
    """The user's role names, read once per request however many tokens carry them."""
    memo = g.setdefault("authgate_roles", {})
    if user.id not in memo:
        memo[user.id] = role_names(user)
    return memo[user.id]


def remember_roles(user: User, names: list[str]) -> None:
    """The user's role names, read by a caller along with the user: what `roles_of` answers in this request."""
    g.setdefault("authgate_roles", {})[user.id] = names


def user_claims(user: User, scope: str) -> dict:
    """Claims about the user for the ID token and userinfo: by scope, plus roles."""
    scopes = scope.split() if scope else []
    claims: dict[str, Any] = {"sub": user.sub}
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
    claims: dict[str, Any] = {
        "iss": issuer(),
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


def sign_in_of(source: AuthorizationCode | RefreshToken) -> SignIn:
    return SignIn(
        auth_time=source.auth_time,
        amr=list(source.amr or []),
        session_id=source.session_id,
        idp=source.idp,
        nonce=getattr(source, "nonce", None),
    )


def id_token(client: Client, user: User, scope: str, sign_in: SignIn, access_token: str | None) -> str:
    now = int(time.time())
    alg = client.signing_alg
    claims: dict[str, Any] = {
        "iss": issuer(),
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
    claims["acr"] = acr_of(sign_in.amr)
    if sign_in.idp:
        claims["idp"] = sign_in.idp
    at_hash = create_half_hash(access_token, alg) if access_token else None
    if at_hash:
        claims["at_hash"] = at_hash.decode()
    claims.update(user_claims(user, scope))
    return sign(claims, alg)
