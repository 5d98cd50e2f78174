"""Authorization codes: stored hashed, single use, bound to client, redirect URI and PKCE challenge.

A code presented again after its use is a replay: someone else holds it. The grant then calls
`revoke_replayed`, which revokes the refresh-token family and the access token the code issued.
"""

import time
from datetime import UTC, datetime, timedelta
from typing import cast

import sqlalchemy as sa

from app.extensions import db
from app.models import AuthorizationCode, BrowserSession, Client, User
from app.services import affected, audit
from app.services.crypto import new_secret, sha256_hex
from app.services.tokens.denylist import deny
from app.services.tokens.refresh import revoke_family

CODE_PREFIX = "agac_"
CODE_LIFETIME = 60

# Built once with bind parameters: composing a statement costs more than running it.
_BY_HASH = sa.select(AuthorizationCode).where(AuthorizationCode.code_hash == sa.bindparam("digest"))
# The single-use mark, as a plain table update (no ORM bookkeeping; the row object is not refreshed).
_CODES = cast(sa.Table, AuthorizationCode.__table__)
_USE = (
    _CODES.update()
    .where(_CODES.c.id == sa.bindparam("row_id"), _CODES.c.used_at.is_(None))
    .values(used_at=sa.bindparam("now"))
)


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
) -> AuthorizationCode:
    """Add the code to the caller's transaction (the authorization endpoint commits it)."""
    row = AuthorizationCode(
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
    db.session.add(row)
    return row


def find_code(code: str, client: Client) -> AuthorizationCode | None:
    """The code issued to this client, used or not, expired or not; None for anything else."""
    if not isinstance(code, str) or not code:
        return None
    row = db.session.scalar(_BY_HASH, {"digest": sha256_hex(code)})
    if row is None or row.client_pk != client.id:
        return None
    return row


def is_expired(row: AuthorizationCode) -> bool:
    return row.expires_at <= datetime.now(UTC)


def consume_code(row: AuthorizationCode) -> bool:
    """Mark the code used; False when another request used it first."""
    return affected(_USE, {"row_id": row.id, "now": datetime.now(UTC)}) == 1


def reread(row: AuthorizationCode) -> AuthorizationCode:
    """The code's row as committed now (after losing the race to use it, the winner's tokens show)."""
    db.session.refresh(row)
    return row


def revoke_replayed(row: AuthorizationCode, client: Client) -> None:
    """A used code came back: revoke what it issued and record the event, in the caller's transaction."""
    if row.family_id:
        revoke_family(row.family_id)
    if row.access_jti and row.access_expires_at:
        deny(row.access_jti, row.access_expires_at)
    audit.record(audit.CODE_REPLAYED, client=client, user=db.session.get(User, row.user_id))
