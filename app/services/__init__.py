"""Business rules shared by the CLI, the console and the protocol endpoints.

Services take and return plain values and models, never Flask request objects. Every write
is one transaction: it commits on success and rolls back on any error, leaving nothing
half-made.
"""

import functools
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db


class ServiceError(Exception):
    """Base for errors a caller shows to a person."""


class ValidationError(ServiceError):
    """Input broke a rule; `errors` maps each field to the reason."""

    def __init__(self, errors: dict[str, str] | str, reason: str | None = None):
        if isinstance(errors, str):
            errors = {errors: reason or "is invalid"}
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {why}" for field, why in self.errors.items()))

    @property
    def field(self) -> str:
        return next(iter(self.errors))

    @property
    def reason(self) -> str:
        return self.errors[self.field]


class NotFound(ServiceError):
    """The named object does not exist (in the given client)."""


class Errors:
    """Collect field errors so a form can show all of them at once."""

    def __init__(self):
        self.errors: dict[str, str] = {}

    def add(self, field: str, reason: str) -> None:
        self.errors.setdefault(field, reason)

    def check(self, field: str, func, *args):
        """Run a validator; record its ValidationError under `field` and return None."""
        try:
            return func(*args)
        except ValidationError as exc:
            self.add(field, exc.reason)
            return None

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def committed(endpoint):
    """Run an endpoint as one unit of work, committed at its end whatever it answers.

    What an endpoint writes on the way to an error answer is deliberate and must last (a replayed
    code revokes what it issued, a failed sign-in is audited); an exception rolls everything back.
    A request that touched no table (a JWT for a cached client) costs nothing: no session is made.
    """

    @functools.wraps(endpoint)
    def run(*args, **kwargs):
        try:
            response = endpoint(*args, **kwargs)
        except BaseException:
            if db.session.registry.has():
                db.session.rollback()
            raise
        if db.session.registry.has() and db.session().in_transaction():
            db.session.commit()
        return response

    return run


def affected(statement: sa.Executable, params: dict[str, Any] | None = None) -> int:
    """Run an UPDATE or DELETE in the current transaction; return how many rows it changed."""
    return cast(sa.CursorResult, db.session.execute(statement, params)).rowcount


def dialect_insert():
    """This database's INSERT construct, which has `on_conflict_do_nothing` and `on_conflict_do_update`."""
    return postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert


@contextmanager
def transaction(conflict: Callable[[], object] | None = None):
    """Commit what the block wrote, or roll all of it back.

    A unique key the database enforces settles a race between two writers; `conflict` turns the
    loser's IntegrityError into the service's own ValidationError: it runs after the rollback,
    checks again (now seeing the winner's row) and raises. Any other violation is re-raised.
    """
    try:
        yield db.session
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        if conflict is not None:
            conflict()
        raise
    except BaseException:
        db.session.rollback()
        raise
