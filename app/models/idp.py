"""Identity providers of a client (Google, GitHub, any OpenID Connect issuer) and the identities linked through them."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.capabilities import IDP_KINDS, sql_in
from app.extensions import Model
from app.models._types import UTCDateTime, utcnow
from app.models.role import Role


class IdentityProvider(Model):
    """An upstream sign-in offered to the users of one client; its slug names it in URLs and the `idp` claim."""

    __tablename__ = "identity_providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    slug: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(120))
    enabled: Mapped[bool] = mapped_column(default=True)
    # This server's registration at the upstream; the secret is encrypted with a key derived
    # from AUTHGATE_SECRET_KEY, like the private signing keys.
    upstream_client_id: Mapped[str] = mapped_column(sa.String(255))
    client_secret_encrypted: Mapped[str] = mapped_column(sa.Text)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    # OpenID Connect (google, oidc): the issuer, whose discovery document names every endpoint.
    issuer: Mapped[str | None] = mapped_column(sa.String(500))
    # GitHub: the site users sign in at and its REST API (GitHub Enterprise Server has its own).
    web_url: Mapped[str | None] = mapped_column(sa.String(500))
    api_url: Mapped[str | None] = mapped_column(sa.String(500))
    # Create a user at the first sign-in of someone unknown, with the default roles.
    auto_create: Mapped[bool] = mapped_column(default=True)
    # Link to the local user with the same email when both sides have verified it.
    link_verified_email: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    default_roles: Mapped[list[Role]] = relationship(
        secondary="idp_default_roles",
        primaryjoin="IdentityProvider.id == IdentityProviderRole.provider_id",
        secondaryjoin="Role.id == IdentityProviderRole.role_id",
        order_by=Role.name,
        viewonly=True,
    )

    __table_args__ = (
        sa.CheckConstraint(sql_in("kind", IDP_KINDS), name="kind"),
        sa.UniqueConstraint("client_pk", "slug"),
        # Target of the composite foreign keys from idp_default_roles and linked_identities.
        sa.UniqueConstraint("client_pk", "id"),
    )

    def __repr__(self):
        return f"<IdentityProvider {self.slug} of client {self.client_pk}>"


class IdentityProviderRole(Model):
    """A role given to users the provider creates; the schema keeps it a role of the provider's client."""

    __tablename__ = "idp_default_roles"

    client_pk: Mapped[int] = mapped_column()
    provider_id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int] = mapped_column(primary_key=True, index=True)

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["client_pk", "provider_id"], ["identity_providers.client_pk", "identity_providers.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["client_pk", "role_id"], ["roles.client_pk", "roles.id"], ondelete="CASCADE"),
    )


class LinkedIdentity(Model):
    """An upstream account (provider + subject) that signs in as one user of the provider's client."""

    __tablename__ = "linked_identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column()
    provider_id: Mapped[int] = mapped_column()
    user_id: Mapped[int] = mapped_column()
    # The upstream's stable id of the account (OIDC `sub`, GitHub's numeric user id), never its email.
    subject: Mapped[str] = mapped_column(sa.String(255))
    # The email the upstream last reported, for people to recognise the link by.
    email: Mapped[str | None] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    provider: Mapped[IdentityProvider] = relationship(
        primaryjoin="LinkedIdentity.provider_id == IdentityProvider.id",
        foreign_keys=[provider_id],
        viewonly=True,
        lazy="joined",
    )

    __table_args__ = (
        # Both foreign keys include the client, so an identity can only sign in as a user of the
        # provider's own client.
        sa.ForeignKeyConstraint(
            ["client_pk", "provider_id"], ["identity_providers.client_pk", "identity_providers.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["client_pk", "user_id"], ["users.client_pk", "users.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("provider_id", "subject"),
        # One account per provider and user.
        sa.UniqueConstraint("user_id", "provider_id"),
    )

    def __repr__(self):
        return f"<LinkedIdentity {self.subject} of provider {self.provider_id}>"
