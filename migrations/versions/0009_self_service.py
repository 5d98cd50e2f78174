"""Self-service: per-client registration settings, default roles, and emailed one-time links.

- clients: allow_registration and require_verified_email, both off for existing clients.
- roles: is_default, the roles a self-registered user is given.
- link_tokens: verification and password-reset links; only the SHA-256 of each token is kept.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

Timestamp = sa.DateTime(timezone=True)

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (as 0005): the defaults stay in the schema for rows an older release writes.
    op.add_column("clients", sa.Column("allow_registration", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column(
        "clients", sa.Column("require_verified_email", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("roles", sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "link_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        sa.CheckConstraint("purpose IN ('verify_email', 'reset_password')", name=op.f("ck_link_tokens_purpose")),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["clients.id"], name=op.f("fk_link_tokens_client_pk_clients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_link_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_link_tokens_token_hash")),
    )
    op.create_index(op.f("ix_link_tokens_client_pk"), "link_tokens", ["client_pk"])
    op.create_index(op.f("ix_link_tokens_user_id"), "link_tokens", ["user_id"])


def downgrade():
    op.drop_index(op.f("ix_link_tokens_user_id"), table_name="link_tokens")
    op.drop_index(op.f("ix_link_tokens_client_pk"), table_name="link_tokens")
    op.drop_table("link_tokens")
    op.drop_column("roles", "is_default")
    op.drop_column("clients", "require_verified_email")
    op.drop_column("clients", "allow_registration")
