"""Liveness and readiness, and waiting for the database at start-up."""

import time

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

from app import __version__
from app.errors import RETRY_AFTER, describe
from app.extensions import db
from app.runtime import runtime
from app.services import ServiceError

bp = Blueprint("health", __name__)


class DatabaseUnreachable(ServiceError):
    """The database did not answer within the time allowed."""


def database_name() -> str:
    """The database's URL without its password, for messages."""
    # URL.set(password=None) would keep the password: None means "unchanged" there.
    return db.engine.url._replace(password=None).render_as_string(hide_password=False)


def check_database() -> str | None:
    """None when the database answers a trivial query; else what went wrong, in one line."""
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        db.session.rollback()
        return describe(error)
    finally:
        db.session.close()
    return None


def wait_for_database(seconds: float) -> None:
    """Try the database once a second until it answers; after `seconds`, raise DatabaseUnreachable."""
    deadline = time.monotonic() + seconds
    while (problem := check_database()) is not None:
        if time.monotonic() >= deadline:
            raise DatabaseUnreachable(f"cannot reach the database {database_name()}: {problem}")
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers. It does not look at the database."""
    return jsonify(status="ok", version=__version__)


@bp.get("/readyz")
def readyz():
    """Readiness: 200 when every dependency answers, else 503 naming what does not."""
    checks = {"database": check_database() or "ok"}
    if current_app.config["AUTHGATE_REDIS_URL"]:
        checks["redis"] = runtime().guard.counters.check() or "ok"
    if all(result == "ok" for result in checks.values()):
        return jsonify(status="ready", checks=checks)
    response = jsonify(status="unavailable", checks=checks)
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER)
    response.headers["Cache-Control"] = "no-store"
    current_app.logger.warning("not ready: %s", checks)
    return response
