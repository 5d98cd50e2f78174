"""Social login: identity providers per client, their default roles, linked identities.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "identity_providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("upstream_client_id", sa.String(255), nullable=False),
        sa.Column("client_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=True),
        sa.Column("web_url", sa.String(500), nullable=True),
        sa.Column("api_url", sa.String(500), nullable=True),
        sa.Column("auto_create", sa.Boolean(), nullable=False),
        sa.Column("link_verified_email", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint("kind IN ('google', 'github', 'oidc')", name=op.f("ck_identity_providers_kind")),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["clients.id"], name=op.f("fk_identity_providers_client_pk_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_providers")),
        sa.UniqueConstraint("client_pk", "id", name=op.f("uq_identity_providers_client_pk_id")),
        sa.UniqueConstraint("client_pk", "slug", name=op.f("uq_identity_providers_client_pk_slug")),
    )
    op.create_index(op.f("ix_identity_providers_client_pk"), "identity_providers", ["client_pk"])
    op.create_table(
        "idp_default_roles",
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        # Both foreign keys include the client, so a provider only hands out roles of its own client.
        sa.ForeignKeyConstraint(
            ["client_pk", "provider_id"],
            ["identity_providers.client_pk", "identity_providers.id"],
            name=op.f("fk_idp_default_roles_client_pk_provider_id_identity_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_pk", "role_id"],
            ["roles.client_pk", "roles.id"],
            name=op.f("fk_idp_default_roles_client_pk_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "role_id", name=op.f("pk_idp_default_roles")),
    )
    op.create_index(op.f("ix_idp_default_roles_role_id"), "idp_default_roles", ["role_id"])
    op.create_table(
        "linked_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_login_at", Timestamp, nullable=True),
        # Both foreign keys include the client, so an identity only signs in as a user of the provider's client.
        sa.ForeignKeyConstraint(
            ["client_pk", "provider_id"],
            ["identity_providers.client_pk", "identity_providers.id"],
            name=op.f("fk_linked_identities_client_pk_provider_id_identity_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_pk", "user_id"],
            ["users.client_pk", "users.id"],
            name=op.f("fk_linked_identities_client_pk_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linked_identities")),
        sa.UniqueConstraint("provider_id", "subject", name=op.f("uq_linked_identities_provider_id_subject")),
        sa.UniqueConstraint("user_id", "provider_id", name=op.f("uq_linked_identities_user_id_provider_id")),
    )


def downgrade():
    op.drop_table("linked_identities")
    op.drop_index(op.f("ix_idp_default_roles_role_id"), table_name="idp_default_roles")
    op.drop_table("idp_default_roles")
    op.drop_index(op.f("ix_identity_providers_client_pk"), table_name="identity_providers")
    op.drop_table("identity_providers")
