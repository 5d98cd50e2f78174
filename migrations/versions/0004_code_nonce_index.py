"""Index authorization codes by client and nonce, for the nonce replay check at every authorization.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_authorization_codes_client_nonce", "authorization_codes", ["client_pk", "nonce"])


def downgrade():
    op.drop_index("ix_authorization_codes_client_nonce", table_name="authorization_codes")
