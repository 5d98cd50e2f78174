"""Deleting what can no longer be used: expired codes, tokens, deny-list entries and sessions."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.models import AccessToken, AuthorizationCode, BrowserSession, RefreshToken, RevokedJti
from app.services import affected, transaction


def purge_expired() -> dict[str, int]:
    """Delete what can no longer be used, in one transaction; safe to run at any time (`flask purge`)."""
    now = datetime.now(UTC)
    replay_window = now - timedelta(days=1)
    with transaction():
        # Used codes are kept a while after expiry so a late replay is still recognised.
        return {
            "codes": affected(sa.delete(AuthorizationCode).where(AuthorizationCode.expires_at < replay_window)),
            "access_tokens": affected(sa.delete(AccessToken).where(AccessToken.expires_at < now)),
            "refresh_tokens": affected(sa.delete(RefreshToken).where(RefreshToken.expires_at < now)),
            "revoked_jtis": affected(sa.delete(RevokedJti).where(RevokedJti.expires_at < now)),
            "sessions": affected(sa.delete(BrowserSession).where(BrowserSession.expires_at < now)),
        }
