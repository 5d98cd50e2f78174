"""Who made each change: the audit log's actor, and indexes for the console's audit-log filters.

`audit_events.actor` names who acted on someone else's behalf: `admin:<username>` for the console,
`cli:<OS user>` for a `flask` command; NULL for what people do themselves (sign-ins, failures, logout).
The audit-log page filters by actor and by username (case-insensitively, as usernames are unique).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("audit_events", sa.Column("actor", sa.String(120), nullable=True))
    op.create_index("ix_audit_events_actor", "audit_events", ["actor"])
    op.create_index("ix_audit_events_username", "audit_events", [sa.text("lower(username)")])


def downgrade():
    op.drop_index("ix_audit_events_username", table_name="audit_events")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    # SQLite 3.35+ drops a plain column in place once its index is gone.
    op.drop_column("audit_events", "actor")
