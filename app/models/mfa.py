"""Second factors of a user: an authenticator app (TOTP), its recovery codes, and passkeys.

Each row belongs to one user of one client, and the composite foreign key to (users.client_pk,
users.id) keeps it there: a factor never crosses tenants.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models._types import UTCDateTime, utcnow


def _owner() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["client_pk", "user_id"], ["users.client_pk", "users.id"], ondelete="CASCADE")


class TotpCredential(Model):
    """The user's authenticator app (RFC 6238); usable once confirmed with a first code."""

    __tablename__ = "totp_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column()
    user_id: Mapped[int] = mapped_column(unique=True)
    # The base32 secret, encrypted with a key derived from AUTHGATE_SECRET_KEY.
    secret_encrypted: Mapped[str] = mapped_column(sa.Text)
    confirmed: Mapped[bool] = mapped_column(default=False)
    # The 30-second time step of the last code accepted: a code of that step or earlier is refused.
    last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (_owner(),)


class RecoveryCode(Model):
    """One single-use recovery code; only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column()
    user_id: Mapped[int] = mapped_column(index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (_owner(), sa.UniqueConstraint("user_id", "code_hash"))


class PasskeyCredential(Model):
    """A WebAuthn credential (a passkey or a security key) the user registered and named."""

    __tablename__ = "passkey_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column()
    user_id: Mapped[int] = mapped_column(index=True)
    # The credential id, base64url without padding, as the browser names it in an assertion.
    credential_id: Mapped[str] = mapped_column(sa.String(1400))
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    sign_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    transports: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # A credential that may be synced between devices (backup eligible) is a software key (amr `swk`);
    # one bound to its device is a hardware key (`hwk`).
    multi_device: Mapped[bool] = mapped_column(default=False)
    name: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (_owner(), sa.UniqueConstraint("client_pk", "credential_id"))
