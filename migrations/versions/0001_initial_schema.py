"""Initial schema: clients, roles, users and their roles, signing keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("token_endpoint_auth_methods", sa.JSON(), nullable=False),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("post_logout_redirect_uris", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("access_token_lifetime", sa.Integer(), nullable=False),
        sa.Column("refresh_token_lifetime", sa.Integer(), nullable=False),
        sa.Column("require_pkce", sa.Boolean(), nullable=False),
        sa.Column("token_format", sa.String(16), nullable=False),
        sa.Column("signing_alg", sa.String(16), nullable=False),
        sa.Column("require_consent", sa.Boolean(), nullable=False),
        sa.Column("jwks", sa.JSON(), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("secret_rotated_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint("signing_alg IN ('RS256', 'ES256', 'EdDSA')", name=op.f("ck_clients_signing_alg")),
        sa.CheckConstraint("token_format IN ('jwt', 'opaque')", name=op.f("ck_clients_token_format")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_clients_client_id")),
    )
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_jwk_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("activates_at", Timestamp, nullable=False),
        sa.Column("retired_at", Timestamp, nullable=True),
        sa.CheckConstraint("alg IN ('RS256', 'ES256', 'EdDSA')", name=op.f("ck_signing_keys_alg")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_signing_keys_kid")),
    )
    op.create_index(op.f("ix_signing_keys_alg"), "signing_keys", ["alg"])
    op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["clients.id"], name=op.f("fk_roles_client_pk_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("client_pk", "id", name=op.f("uq_roles_client_pk_id")),
        sa.UniqueConstraint("client_pk", "name", name=op.f("uq_roles_client_pk_name")),
    )
    op.create_index(op.f("ix_roles_client_pk"), "roles", ["client_pk"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("sub", sa.String(36), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(60), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("last_login_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["clients.id"], name=op.f("fk_users_client_pk_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("client_pk", "id", name=op.f("uq_users_client_pk_id")),
        sa.UniqueConstraint("sub", name=op.f("uq_users_sub")),
    )
    # Usernames and emails are unique per client regardless of case.
    op.create_index("uq_users_client_username", "users", ["client_pk", sa.text("lower(username)")], unique=True)
    op.create_index("uq_users_client_email", "users", ["client_pk", sa.text("lower(email)")], unique=True)
    op.create_table(
        "user_roles",
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        # Both foreign keys include the client, so a user can only hold roles of their own client.
        sa.ForeignKeyConstraint(
            ["client_pk", "role_id"],
            ["roles.client_pk", "roles.id"],
            name=op.f("fk_user_roles_client_pk_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_pk", "user_id"],
            ["users.client_pk", "users.id"],
            name=op.f("fk_user_roles_client_pk_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "role_id", name=op.f("pk_user_roles")),
    )
    op.create_index(op.f("ix_user_roles_role_id"), "user_roles", ["role_id"])


def downgrade():
    op.drop_index(op.f("ix_user_roles_role_id"), table_name="user_roles")
    op.drop_table("user_roles")
    op.drop_index("uq_users_client_email", table_name="users")
    op.drop_index("uq_users_client_username", table_name="users")
    op.drop_table("users")
    op.drop_index(op.f("ix_roles_client_pk"), table_name="roles")
    op.drop_table("roles")
    op.drop_index(op.f("ix_signing_keys_alg"), table_name="signing_keys")
    op.drop_table("signing_keys")
    op.drop_table("clients")
