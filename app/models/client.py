"""OAuth clients: the tenant everything else belongs to."""

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import ClientMixin, scope_to_list
from sqlalchemy.orm import Mapped, mapped_column

from app.capabilities import MFA_POLICIES, RESPONSE_TYPES, SIGNING_ALGS, TOKEN_FORMATS, sql_in
from app.extensions import Model
from app.models._types import UTCDateTime, utcnow


class Client(Model, ClientMixin):
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
    # The idle timeout of a refresh token: each rotation's token expires this long after it is issued.
    refresh_token_lifetime: Mapped[int] = mapped_column(default=30 * 86400)
    # The absolute maximum of a refresh-token family, counted from the code exchange.
    refresh_token_max_lifetime: Mapped[int] = mapped_column(default=90 * 86400)
    require_pkce: Mapped[bool] = mapped_column(default=True)
    token_format: Mapped[str] = mapped_column(sa.String(16), default="jwt")
    signing_alg: Mapped[str] = mapped_column(sa.String(16), default="RS256")
    require_consent: Mapped[bool] = mapped_column(default=False)
    # Self-service: people may register themselves on the hosted pages (given the roles marked default)...
    allow_registration: Mapped[bool] = mapped_column(default=False)
    # ...and may sign in only once they have verified their email address.
    require_verified_email: Mapped[bool] = mapped_column(default=False)
    # Second factors: off, optional (users may enrol one, and are asked for it) or required.
    mfa_policy: Mapped[str] = mapped_column(sa.String(16), default="off")
    # The client's public keys for private_key_jwt authentication (a JWK Set).
    jwks: Mapped[dict | None] = mapped_column(sa.JSON)
    # SHA-256 of the secret; None for public clients.
    secret_hash: Mapped[str | None] = mapped_column(sa.String(64))
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint(sql_in("token_format", TOKEN_FORMATS), name="token_format"),
        sa.CheckConstraint(sql_in("signing_alg", SIGNING_ALGS), name="signing_alg"),
        sa.CheckConstraint(sql_in("mfa_policy", MFA_POLICIES), name="mfa_policy"),
    )

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_methods == ["none"]

    # Called by Authlib; the rules behind them live in app/services/clients.py.

    def get_client_id(self) -> str:
        return self.client_id

    # Authlib's stubs say str; Authlib itself handles None (it then requires redirect_uri).
    def get_default_redirect_uri(self) -> str | None:  # type: ignore[override]
        # Only unambiguous when exactly one is registered.
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: Collection[str] | str | None) -> str | None:  # type: ignore[override]
        """Return the scope to grant, or None when any requested scope is not the client's."""
        if not scope:
            return " ".join(s for s in self.scopes if s != "offline_access")
        requested = list(dict.fromkeys(scope_to_list(scope)))
        if any(s not in self.scopes for s in requested):
            return None
        return " ".join(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        from app.services.crypto import matches_hash

        return matches_hash(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.token_endpoint_auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type in RESPONSE_TYPES and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    @property
    def client_metadata(self) -> dict:
        return {"post_logout_redirect_uris": self.post_logout_redirect_uris}

    def __repr__(self):
        return f"<Client {self.client_id}>"
