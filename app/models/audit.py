"""Security events: sign-ins, failures, token reuse, admin actions. Never secrets."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models._types import UTCDateTime, utcnow
from app.models.client import Client


class AuditEvent(Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(sa.String(40), index=True)
    client_pk: Mapped[int | None] = mapped_column(sa.ForeignKey("clients.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # The user's name, or what was typed at a failed sign-in when it named an account (never a password).
    username: Mapped[str | None] = mapped_column(sa.String(254))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    # Who acted on someone else's behalf: "admin:<username>" (console), "cli:<OS user>"; None for one's own doing.
    actor: Mapped[str | None] = mapped_column(sa.String(120), index=True)
    detail: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    # Loaded only when a query asks for it (the audit-log page joins it): never one query per event.
    client: Mapped[Client | None] = relationship(viewonly=True, lazy="raise")

    __table_args__ = (sa.Index("ix_audit_events_username", sa.func.lower(username)),)
