"""Session lifecycle: idle sessions, session-bound refresh tokens, absolute family lifetimes, credential changes.

- browser_sessions: last_seen_at (the idle timeout counts from it), ip and user_agent (the console's list).
- refresh_tokens: family_expires_at, the family's absolute end; existing rows get their own
  expiry, so no family lives longer than it was promised at its last rotation.
- clients: refresh_token_max_lifetime (90 days, or the idle timeout if that is longer);
  refresh_token_lifetime stays and is the idle timeout from now on.
- users: credentials_changed_at; access JWTs issued up to then are inactive.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

Timestamp = sa.DateTime(timezone=True)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MAX_LIFETIME = 90 * 86400


def upgrade():
    # Plain ADD COLUMN on both databases: SQLite's batch mode would copy tables and reflect the
    # users table, whose expression indexes it cannot read.
    op.add_column("browser_sessions", sa.Column("last_seen_at", Timestamp, nullable=True))
    op.add_column("browser_sessions", sa.Column("ip", sa.String(length=45), nullable=True))
    op.add_column("browser_sessions", sa.Column("user_agent", sa.String(length=255), nullable=True))
    op.execute("UPDATE browser_sessions SET last_seen_at = created_at")

    op.add_column("refresh_tokens", sa.Column("family_expires_at", Timestamp, nullable=True))
    op.execute("UPDATE refresh_tokens SET family_expires_at = expires_at")
    if op.get_bind().dialect.name == "postgresql":
        # SQLite cannot add NOT NULL to a column without copying the table; every row has a value
        # and the application always sets it.
        op.alter_column("refresh_tokens", "family_expires_at", existing_type=Timestamp, nullable=False)

    # The default stays in the schema: rows written by an older release during a rolling upgrade get it.
    op.add_column(
        "clients",
        sa.Column("refresh_token_max_lifetime", sa.Integer(), nullable=False, server_default=str(MAX_LIFETIME)),
    )
    op.execute(
        "UPDATE clients SET refresh_token_max_lifetime = refresh_token_lifetime "
        "WHERE refresh_token_lifetime > refresh_token_max_lifetime"
    )

    op.add_column("users", sa.Column("credentials_changed_at", Timestamp, nullable=True))


def downgrade():
    op.drop_column("users", "credentials_changed_at")
    op.drop_column("clients", "refresh_token_max_lifetime")
    op.drop_column("refresh_tokens", "family_expires_at")
    op.drop_column("browser_sessions", "user_agent")
    op.drop_column("browser_sessions", "ip")
    op.drop_column("browser_sessions", "last_seen_at")
