"""OAuth clients: the tenant everything else belongs to."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class Client(db.Model):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Step 1: basic info.
    client_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    # Step 2: capabilities.
    token_endpoint_auth_methods: Mapped[list[str]] = mapped_column(sa.JSON)
    grant_types: Mapped[list[str]] = mapped_column(sa.JSON)
    # Step 3: URIs and scopes.
    redirect_uris: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # Step 4: token settings.
    access_token_lifetime: Mapped[int] = mapped_column(default=3600)
    refresh_token_lifetime: Mapped[int] = mapped_column(default=30 * 86400)
    require_pkce: Mapped[bool] = mapped_column(default=True)
    token_format: Mapped[str] = mapped_column(sa.String(16), default="jwt")
    signing_alg: Mapped[str] = mapped_column(sa.String(16), default="RS256")
    require_consent: Mapped[bool] = mapped_column(default=False)
    # The client's public keys for private_key_jwt authentication (a JWK Set).
    jwks: Mapped[dict | None] = mapped_column(sa.JSON)
    # SHA-256 of the secret; None for public clients.
    secret_hash: Mapped[str | None] = mapped_column(sa.String(64))
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint("token_format IN ('jwt', 'opaque')", name="token_format"),
        sa.CheckConstraint("signing_alg IN ('RS256', 'ES256', 'EdDSA')", name="signing_alg"),
    )

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_methods == ["none"]

    def __repr__(self):
        return f"<Client {self.client_id}>"
