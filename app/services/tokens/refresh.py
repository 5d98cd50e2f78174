"""Refresh-token families: stored hashed, rotated on every use; a rotated token coming back ends its family."""

from datetime import UTC, datetime
from typing import cast

import sqlalchemy as sa

from app.extensions import db
from app.models import AccessToken, Client, RefreshToken, Role, User, UserRole
from app.services import affected, audit
from app.services.crypto import sha256_hex
from app.services.tokens.claims import remember_roles
from app.services.tokens.denylist import deny

REFRESH_TOKEN_PREFIX = "agrt_"

# The user and their role names (a row per role, as `users.role_names` orders them) come along in
# the same round trip: the refresh grant reads the user next, and its tokens carry the roles.
_BY_HASH = (
    sa.select(RefreshToken, User, Role.name)
    .join(User, User.id == RefreshToken.user_id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .outerjoin(Role, Role.id == UserRole.role_id)
    .where(RefreshToken.token_hash == sa.bindparam("digest"))
    .order_by(Role.name)
)
# The single-use mark, as a plain table update (no ORM bookkeeping; the row object is not refreshed).
_REFRESH_TOKENS = cast(sa.Table, RefreshToken.__table__)
_USE = (
    _REFRESH_TOKENS.update()
    .where(
        _REFRESH_TOKENS.c.id == sa.bindparam("row_id"),
        _REFRESH_TOKENS.c.used_at.is_(None),
        _REFRESH_TOKENS.c.revoked_at.is_(None),
    )
    .values(used_at=sa.bindparam("now"))
)


def find_refresh_token(value: str, client: Client) -> RefreshToken | None:
    """This client's refresh token, unless revoked or expired; a rotated one is returned too (see `is_rotated`)."""
    if not isinstance(value, str) or not value:
        return None
    found = db.session.execute(_BY_HASH, {"digest": sha256_hex(value)}).all()
    if not found:
        return None
    row, user, _ = found[0]
    # The session's identity map holds objects weakly: kept here (for this session, this request),
    # the user is what the grant's look-up by primary key finds, without a query.
    db.session.info.setdefault("authgate_loaded", []).append(user)
    remember_roles(user, [name for _, _, name in found if name is not None])
    if row.client_pk != client.id or row.revoked_at is not None:
        return None
    if row.used_at is None and row.expires_at <= datetime.now(UTC):
        return None
    return row


def is_session_bound(row: RefreshToken) -> bool:
    """A token without offline_access that came from a browser sign-in: it ends with that sign-in."""
    return bool(row.session_id) and not row.is_offline


def is_rotated(row: RefreshToken) -> bool:
    return row.used_at is not None


def rotate_refresh_token(row: RefreshToken) -> bool:
    """Mark the token used; False when another request rotated (or revoked) it first.

    On PostgreSQL the losing UPDATE still locks the row it re-checked, and the loser goes on to
    revoke the family: holding that lock while others do the same deadlocks. The attempt runs in
    a savepoint that a loser rolls back, which releases the lock.
    """
    params = {"row_id": row.id, "now": datetime.now(UTC)}
    if db.session.get_bind().dialect.name != "postgresql":
        return affected(_USE, params) == 1  # SQLite has no row locks: one writer at a time
    savepoint = db.session.begin_nested()
    if affected(_USE, params) == 1:
        savepoint.commit()
        return True
    savepoint.rollback()
    return False


def report_reuse(row: RefreshToken, client: Client) -> int:
    """A rotated refresh token came back: someone holds a copy. End the whole family, in the caller's transaction."""
    revoked = revoke_family(row.family_id)
    audit.record(
        audit.REFRESH_TOKEN_REUSED,
        client=client,
        user=db.session.get(User, row.user_id),
        family=row.family_id[:8],
        revoked=revoked,
    )
    return revoked


def revoke_family(family_id: str) -> int:
    """Revoke every refresh and opaque access token of a family, and deny its JWT access tokens.

    The family's rows are locked first, in one order: parallel revocations of one family (the
    losers of a refresh race, parallel replays of a code) then run one after the other instead of
    each waiting for a deny-list row or a token row the other holds.
    """
    now = datetime.now(UTC)
    rows = db.session.execute(
        sa.select(RefreshToken.access_jti, RefreshToken.access_expires_at)
        .where(RefreshToken.family_id == family_id)
        .order_by(RefreshToken.id)
        .with_for_update()
    ).all()
    for jti, expires_at in sorted(rows, key=lambda r: r[0] or ""):
        if jti and expires_at and expires_at > now:
            deny(jti, expires_at)
    revoked = affected(
        sa.update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    db.session.execute(
        sa.update(AccessToken)
        .where(AccessToken.family_id == family_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return revoked


def revoke_user_tokens(user_id: int) -> int:
    """Revoke every refresh-token family of a user (offline ones too) and their opaque access tokens.

    Used when the user's credentials change; JWT access tokens are refused by their `iat` instead
    (see `access.issued_before_change`). Returns how many families were revoked.
    """
    families = db.session.scalars(
        sa.select(RefreshToken.family_id)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .distinct()
        .order_by(RefreshToken.family_id)
    ).all()
    for family_id in families:
        revoke_family(family_id)
    db.session.execute(
        sa.update(AccessToken)
        .where(AccessToken.user_id == user_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return len(families)
