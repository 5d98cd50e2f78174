"""Emailed one-time links: verify an email address, reset a password."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models._types import UTCDateTime, utcnow

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
PURPOSES = (VERIFY_EMAIL, RESET_PASSWORD)


class LinkToken(Model):
    """One emailed link, bound to a user and a purpose; only the SHA-256 of its token is kept.

    A link works once (`used_at`), until `expires_at`, and only while it is the user's newest link
    of its purpose (a newer one deletes it). A verification link is also bound to the address it
    was sent to: it verifies that address, which for a change of email becomes the user's then.
    """

    __tablename__ = "link_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    client_pk: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(sa.String(32))
    email: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.CheckConstraint("purpose IN ('verify_email', 'reset_password')", name="purpose"),)
