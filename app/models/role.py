"""Roles, defined under one client."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model


class Role(Model):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    # Given to every user who registers themselves (the client's default roles).
    is_default: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        sa.UniqueConstraint("client_pk", "name"),
        # ROLE_ADMIN and role_admin are one name (migration 0008), as usernames and emails are.
        sa.Index("uq_roles_client_name_lower", "client_pk", sa.func.lower(name), unique=True),
        # Target of the composite foreign key from user_roles.
        sa.UniqueConstraint("client_pk", "id"),
    )

    def __repr__(self):
        return f"<Role {self.name} of client {self.client_pk}>"
