"""Role names are unique per client whatever their case, as usernames and emails already are.

`ROLE_ADMIN` and `role_admin` in one client read as one role to a person and to many
applications' checks, yet could be given separately. A unique index on (client, lower(name))
refuses the second. Existing pairs cannot be merged for the admin (which one do users keep?): the
upgrade stops and names them, to be renamed or deleted before it runs again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "uq_roles_client_name_lower"


def clashing_roles(conn) -> list[str]:
    """'client: NAME, name' for each set of one client's roles whose names differ only in case."""
    rows = conn.execute(
        sa.text(
            "SELECT c.client_id, r.name FROM roles r JOIN clients c ON c.id = r.client_pk"
            " WHERE EXISTS (SELECT 1 FROM roles o"
            "  WHERE o.client_pk = r.client_pk AND lower(o.name) = lower(r.name) AND o.id <> r.id)"
            " ORDER BY c.client_id, lower(r.name), r.name"
        )
    ).all()
    groups: dict[tuple[str, str], list[str]] = {}
    for client_id, name in rows:
        groups.setdefault((client_id, name.lower()), []).append(name)
    return [f"{client_id}: {', '.join(names)}" for (client_id, _), names in groups.items()]


def upgrade():
    clashes = clashing_roles(op.get_bind())
    if clashes:
        raise CommandError(
            "Role names are now case-insensitive, and these roles of one client differ only in case: "
            + "; ".join(clashes)
            + ". Rename or delete all but one of each (the console, or `flask roles delete --client CLIENT_ID --name NAME`),"
            " then run the upgrade again."
        )
    op.create_index(INDEX, "roles", ["client_pk", sa.text("lower(name)")], unique=True)


def downgrade():
    op.drop_index(INDEX, table_name="roles")
