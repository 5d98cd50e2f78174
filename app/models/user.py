"""Users, registered under one client, and their role assignments."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models._types import UTCDateTime, utcnow
from app.models.role import Role


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"))
    # The OIDC subject: stable, opaque, never the username.
    sub: Mapped[str] = mapped_column(sa.String(36), unique=True, default=lambda: str(uuid.uuid4()))
    username: Mapped[str] = mapped_column(sa.String(64))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    first_name: Mapped[str] = mapped_column(sa.String(100), default="")
    last_name: Mapped[str] = mapped_column(sa.String(100), default="")
    # bcrypt hash; None for users who only sign in through a social provider.
    password_hash: Mapped[str | None] = mapped_column(sa.String(60))
    enabled: Mapped[bool] = mapped_column(default=True)
    email_verified: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Password change, disable or "sign out everywhere": access JWTs issued up to then are inactive.
    credentials_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    roles: Mapped[list[Role]] = relationship(
        secondary="user_roles",
        primaryjoin="User.id == UserRole.user_id",
        secondaryjoin="Role.id == UserRole.role_id",
        order_by=Role.name,
        viewonly=True,
    )

    __table_args__ = (
        # Case-insensitive uniqueness per client; NULL emails never collide.
        sa.Index("uq_users_client_username", "client_pk", sa.func.lower(username), unique=True),
        sa.Index("uq_users_client_email", "client_pk", sa.func.lower(email), unique=True),
        # Target of the composite foreign key from user_roles.
        sa.UniqueConstraint("client_pk", "id"),
    )

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    def __repr__(self):
        return f"<User {self.username} of client {self.client_pk}>"


class UserRole(Model):
    """A role held by a user; both must belong to the same client, which the schema enforces."""

    __tablename__ = "user_roles"

    client_pk: Mapped[int] = mapped_column()
    user_id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int] = mapped_column(primary_key=True, index=True)

    __table_args__ = (
        sa.ForeignKeyConstraint(["client_pk", "user_id"], ["users.client_pk", "users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["client_pk", "role_id"], ["roles.client_pk", "roles.id"], ondelete="CASCADE"),
    )
