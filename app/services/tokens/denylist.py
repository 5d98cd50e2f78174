"""The deny-list: JWT ids that must no longer be accepted (revoked access tokens, used client assertions)."""

from datetime import datetime
from typing import cast

import sqlalchemy as sa

from app.extensions import db
from app.models import RevokedJti
from app.services import dialect_insert

_IS_DENIED = sa.select(sa.exists().where(RevokedJti.jti == sa.bindparam("jti")))
_TABLE = cast(sa.Table, RevokedJti.__table__)


def deny(jti: str, expires_at: datetime) -> bool:
    """Put a jti on the deny-list until `expires_at`; False when it was there already.

    Insert-or-ignore: two requests that deny the same jti at once (parallel replays of one code)
    both succeed, and the one that came second learns it, without a unique violation.
    """
    statement = (
        dialect_insert()(_TABLE)
        .values(jti=jti, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["jti"])
        # RETURNING rather than rowcount: psycopg reports no row count for this statement.
        .returning(_TABLE.c.jti)
    )
    return db.session.execute(statement).first() is not None


def is_denied(jti: str) -> bool:
    return bool(db.session.scalar(_IS_DENIED, {"jti": jti}))
