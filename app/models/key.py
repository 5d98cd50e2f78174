"""Signing keys for ID tokens and JWT access tokens."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.capabilities import SIGNING_ALGS, sql_in
from app.extensions import Model
from app.models._types import UTCDateTime, utcnow


class SigningKey(Model):
    """One key pair; its state (next, active, retired) follows from its timestamps.

    A key is `next` until `activates_at`, then `active` until a newer key of the same
    algorithm activates (`retired_at`), then `retired` while tokens it signed may live.
    A revoked key (`revoked_at`) is neither published nor trusted, whatever its other times say.
    """

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    alg: Mapped[str] = mapped_column(sa.String(16), index=True)
    public_jwk: Mapped[dict] = mapped_column(sa.JSON)
    # The private JWK, encrypted with a key derived from AUTHGATE_SECRET_KEY.
    private_jwk_encrypted: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activates_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.CheckConstraint(sql_in("alg", SIGNING_ALGS), name="alg"),)

    def __repr__(self):
        return f"<SigningKey {self.kid} {self.alg}>"


class ServerState(Model):
    """Small named rows every process of the server shares through the database.

    `key_ring`: `version` is bumped by every rotation and revocation, and each worker compares
    it with the version it loaded at most once a second. `settings`: `value` holds the serving
    workers' JWKS max-age and key refresh interval, which rotation times follow (not the CLI's
    environment). `lease:<job>`: `holder` runs the job until `held_until`; taken with a
    conditional UPDATE, so of several workers and nodes one at a time does.
    """

    __tablename__ = "server_state"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    version: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    value: Mapped[dict | None] = mapped_column(sa.JSON)
    holder: Mapped[str | None] = mapped_column(sa.String(128))
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
