"""Key lifecycle: revoked signing keys, and the small shared state of the server's processes.

`signing_keys.revoked_at` takes a key out of the JWKS and out of verification at once.
`server_state` holds named rows: the key ring's version (bumped by rotate and revoke, polled by
every worker once a second), the settings the serving workers record (JWKS max-age, key refresh
interval) for rotation times, and leases that let one process at a time run a job.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade():
    op.add_column("signing_keys", sa.Column("revoked_at", Timestamp, nullable=True))
    op.create_table(
        "server_state",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("holder", sa.String(128), nullable=True),
        sa.Column("held_until", Timestamp, nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_state")),
    )


def downgrade():
    op.drop_table("server_state")
    # SQLite 3.35+ drops a plain column in place; the column has no index or constraint.
    op.drop_column("signing_keys", "revoked_at")
