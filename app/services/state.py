"""What the server's processes share through the database: version counters, recorded settings, leases.

One table, `server_state`, of named rows (see `app.models.key.ServerState`). Versions and values
are written in the caller's transaction; a lease is taken in its own, so that the process that
won it is known to every other at once.
"""

from datetime import UTC, datetime, timedelta
from typing import cast

import sqlalchemy as sa

from app.extensions import db
from app.models import ServerState
from app.services import affected, dialect_insert, transaction

_TABLE = cast(sa.Table, ServerState.__table__)
VERSION = sa.select(_TABLE.c.version).where(_TABLE.c.name == sa.bindparam("name"))
_VALUE = sa.select(_TABLE.c.value).where(_TABLE.c.name == sa.bindparam("name"))


def _now() -> datetime:
    return datetime.now(UTC)


def bump(name: str) -> int:
    """Add one to a version, in the caller's transaction; return the new version.

    Called first in a transaction, it also serialises writers: the row stays locked (PostgreSQL)
    or the database write-locked (SQLite) until the caller commits, so what the caller reads
    next includes whatever the previous holder committed.
    """
    now = _now()
    statement = (
        dialect_insert()(_TABLE)
        .values(name=name, version=1, updated_at=now)
        .on_conflict_do_update(index_elements=["name"], set_={"version": _TABLE.c.version + 1, "updated_at": now})
        .returning(_TABLE.c.version)
    )
    return int(db.session.execute(statement).scalar_one())


def value(name: str) -> dict | None:
    return db.session.scalar(_VALUE, {"name": name})


def put_value(name: str, data: dict) -> bool:
    """Store a value unless it is already there, in the caller's transaction; True when it changed."""
    if value(name) == data:
        return False
    now = _now()
    statement = (
        dialect_insert()(_TABLE)
        .values(name=name, version=1, value=data, updated_at=now)
        .on_conflict_do_update(
            index_elements=["name"], set_={"value": data, "version": _TABLE.c.version + 1, "updated_at": now}
        )
    )
    db.session.execute(statement)
    return True


def take_lease(name: str, holder: str, seconds: float) -> bool:
    """Hold `name` for `seconds` unless someone else holds it now; commits; True for the winner.

    The conditional UPDATE settles a race: of several processes and nodes asking at once,
    exactly one changes the row. A lease is not given back: it runs out, which also spaces the job.
    """
    now = _now()
    with transaction():
        row = dialect_insert()(_TABLE).values(name=name, version=0, updated_at=now)
        db.session.execute(row.on_conflict_do_nothing(index_elements=["name"]))
        won = affected(
            sa.update(_TABLE)
            .where(_TABLE.c.name == name, sa.or_(_TABLE.c.held_until.is_(None), _TABLE.c.held_until <= now))
            .values(holder=holder, held_until=now + timedelta(seconds=seconds), updated_at=now)
        )
    return won == 1


def release_lease(name: str, holder: str) -> None:
    """End a lease early (a job that failed may be retried by anyone at once)."""
    with transaction():
        db.session.execute(
            sa.update(_TABLE).where(_TABLE.c.name == name, _TABLE.c.holder == holder).values(held_until=None)
        )
