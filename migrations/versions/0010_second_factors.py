"""Second factors: authenticator apps (TOTP), recovery codes, passkeys, and each client's MFA policy.

- clients: mfa_policy (off, optional, required); off for existing clients, optional for the console's own.
- totp_credentials: one per user, its secret encrypted with a key derived from AUTHGATE_SECRET_KEY.
- recovery_codes: ten single-use codes per user; only the SHA-256 of each is kept.
- passkey_credentials: WebAuthn credentials, several per user, each named.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

Timestamp = sa.DateTime(timezone=True)

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CONSOLE_CLIENT_ID = "authgate-console"


def _owner(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["client_pk", "user_id"],
        ["users.client_pk", "users.id"],
        name=op.f(f"fk_{table}_client_pk_user_id_users"),
        ondelete="CASCADE",
    )


def upgrade():
    # Plain ADD COLUMN (as 0005): SQLite's batch mode would copy the table. The CHECK goes inline with
    # the column, which both databases accept in ADD COLUMN; the default stays for older releases' rows.
    op.add_column(
        "clients",
        sa.Column(
            "mfa_policy",
            sa.String(length=16),
            sa.CheckConstraint("mfa_policy IN ('off', 'optional', 'required')", name=op.f("ck_clients_mfa_policy")),
            nullable=False,
            server_default="off",
        ),
    )
    op.execute(
        sa.text("UPDATE clients SET mfa_policy = 'optional' WHERE client_id = :console").bindparams(
            console=CONSOLE_CLIENT_ID
        )
    )
    op.create_table(
        "totp_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("confirmed_at", Timestamp, nullable=True),
        sa.Column("last_used_at", Timestamp, nullable=True),
        _owner("totp_credentials"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_credentials")),
        sa.UniqueConstraint("user_id", name=op.f("uq_totp_credentials_user_id")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        _owner("recovery_codes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("user_id", "code_hash", name=op.f("uq_recovery_codes_user_id_code_hash")),
    )
    op.create_index(op.f("ix_recovery_codes_user_id"), "recovery_codes", ["user_id"])
    op.create_table(
        "passkey_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("transports", sa.JSON(), nullable=False),
        sa.Column("multi_device", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_used_at", Timestamp, nullable=True),
        _owner("passkey_credentials"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkey_credentials")),
        sa.UniqueConstraint("client_pk", "credential_id", name=op.f("uq_passkey_credentials_client_pk_credential_id")),
    )
    op.create_index(op.f("ix_passkey_credentials_user_id"), "passkey_credentials", ["user_id"])


def downgrade():
    op.drop_index(op.f("ix_passkey_credentials_user_id"), table_name="passkey_credentials")
    op.drop_table("passkey_credentials")
    op.drop_index(op.f("ix_recovery_codes_user_id"), table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_table("totp_credentials")
    op.drop_column("clients", "mfa_policy")
