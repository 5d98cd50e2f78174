"""What the protocol issues: authorization codes, tokens, browser sessions, consents."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models._types import UTCDateTime, utcnow


def _client_fk():
    return mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)


def _user_fk(nullable=False):
    return mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=nullable, index=True)


class BrowserSession(Model):
    """A user signed in to one client in one browser; the signed cookie holds its id."""

    __tablename__ = "browser_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    client_pk: Mapped[int] = _client_fk()
    user_id: Mapped[int] = _user_fk()
    auth_time: Mapped[int] = mapped_column(sa.BigInteger)
    amr: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    idp: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Last sign-in, authorization or refresh through it (written at most once a minute);
    # the idle timeout counts from here.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where the sign-in came from, for the console's list of sessions.
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))


class AuthorizationCode(Model):
    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    client_pk: Mapped[int] = _client_fk()
    user_id: Mapped[int] = _user_fk()
    redirect_uri: Mapped[str] = mapped_column(sa.Text)
    scope: Mapped[str] = mapped_column(sa.Text)
    nonce: Mapped[str | None] = mapped_column(sa.Text)
    code_challenge: Mapped[str | None] = mapped_column(sa.String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(sa.String(8))
    session_id: Mapped[str | None] = mapped_column(sa.String(64))
    auth_time: Mapped[int] = mapped_column(sa.BigInteger)
    amr: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    idp: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when exchanged; a second exchange finds it set and revokes what the first issued.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    family_id: Mapped[str | None] = mapped_column(sa.String(36))
    access_jti: Mapped[str | None] = mapped_column(sa.String(64))
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The nonce replay check runs at every authorization request.
    __table_args__ = (sa.Index("ix_authorization_codes_client_nonce", "client_pk", "nonce"),)

    # Called by Authlib's grants and its PKCE extension.

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return self.amr


class RefreshToken(Model):
    """One refresh token of a family; each use rotates it to a new one in the same family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    family_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    client_pk: Mapped[int] = _client_fk()
    user_id: Mapped[int] = _user_fk()
    scope: Mapped[str] = mapped_column(sa.Text)
    session_id: Mapped[str | None] = mapped_column(sa.String(64))
    auth_time: Mapped[int] = mapped_column(sa.BigInteger)
    amr: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    idp: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the whole family ends however often it is used (the client's absolute maximum from its code).
    family_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The JWT access token issued with this refresh token, so revoking the family reaches it.
    access_jti: Mapped[str | None] = mapped_column(sa.String(64))
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Called by Authlib's refresh token grant.

    def check_client(self, client) -> bool:
        return self.client_pk == client.id

    def get_scope(self) -> str:
        return self.scope

    @property
    def is_offline(self) -> bool:
        """Granted offline_access: survives the end of the browser session it came from."""
        return "offline_access" in self.scope.split()


class AccessToken(Model):
    """An opaque access token (JWT access tokens are not stored)."""

    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    family_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    client_pk: Mapped[int] = _client_fk()
    user_id: Mapped[int | None] = _user_fk(nullable=True)
    scope: Mapped[str] = mapped_column(sa.Text)
    jti: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RevokedJti(Model):
    """Deny-list of revoked JWTs (access tokens, client assertions), kept until they expire."""

    __tablename__ = "revoked_jtis"

    jti: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Consent(Model):
    """Scopes a user allowed a client, remembered until revoked."""

    __tablename__ = "consents"

    client_pk: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
