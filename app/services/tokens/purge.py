"""Deleting what can no longer be used: expired codes, tokens, deny-list entries and sessions."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import AccessToken, AuthorizationCode, BrowserSession, RefreshToken, RevokedJti
from app.services import transaction


def purge_expired() -> dict[str, int]:
    """Delete what can no longer be used, in one transaction; safe to run at any time (`flask purge`)."""
    now = datetime.now(UTC)
    with transaction():
        # Used codes are kept a while after expiry so a late replay is still recognised.
        return {
            "codes": db.session.execute(
                sa.delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - timedelta(days=1))
            ).rowcount,
            "access_tokens": db.session.execute(sa.delete(AccessToken).where(AccessToken.expires_at < now)).rowcount,
            "refresh_tokens": db.session.execute(sa.delete(RefreshToken).where(RefreshToken.expires_at < now)).rowcount,
            "revoked_jtis": db.session.execute(sa.delete(RevokedJti).where(RevokedJti.expires_at < now)).rowcount,
            "sessions": db.session.execute(sa.delete(BrowserSession).where(BrowserSession.expires_at < now)).rowcount,
        }
