"""The server's own housekeeping: recording its settings, rotating keys when due, purging what expired.

Every serving worker runs a `Housekeeper` thread, started by its first request (never by the CLI,
which builds the app too but serves nothing, and whose environment may differ from the server's).
Every `TICK` seconds it records the worker's JWKS max-age and key refresh interval (what rotation
times follow), publishes a `next` key for an algorithm whose active key is older than
`AUTHGATE_KEY_ROTATION_DAYS` (rotation is serialised in the database, so exactly one worker of all
nodes does it), and purges expired rows when it wins the purge lease, which lasts
`AUTHGATE_MAINTENANCE_SECONDS`: of all workers and nodes one purges, once per period.
`AUTHGATE_MAINTENANCE_SECONDS=0` starts no thread at all (then run `flask purge` from cron).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app

from app.extensions import db
from app.models import AuditEvent
from app.services import affected, keys, state, transaction

log = logging.getLogger("authgate.maintenance")

PURGE_LEASE = "lease:purge"
# How often the housekeeper wakes up (or more often, for a shorter maintenance period).
TICK = 60.0


def purge_audit_events() -> int:
    """Delete audit events older than AUTHGATE_AUDIT_RETENTION_DAYS (0 keeps them); commits."""
    days = current_app.config["AUTHGATE_AUDIT_RETENTION_DAYS"]
    if not days:
        return 0
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with transaction():
        return affected(sa.delete(AuditEvent).where(AuditEvent.at < cutoff))


def purge_all() -> dict[str, int]:
    """Everything `flask purge` and the housekeeper delete: expired codes, tokens, sessions, old events."""
    from app.services.tokens import purge_expired

    counts = purge_expired()
    counts["audit_events"] = purge_audit_events()
    return counts


def purge_if_due(holder: str) -> dict[str, int] | None:
    """Purge if no other process did within the maintenance period; None when another one holds the lease."""
    period = current_app.config["AUTHGATE_MAINTENANCE_SECONDS"] or TICK
    if not state.take_lease(PURGE_LEASE, holder, period):
        return None
    try:
        counts = purge_all()
    except BaseException:
        state.release_lease(PURGE_LEASE, holder)  # let the next one try at once
        raise
    log.info("purged %s", " ".join(f"{what}={n}" for what, n in counts.items()))
    return counts


def rotate_if_due() -> list:
    """Publish a `next` key for each algorithm whose active key is older than AUTHGATE_KEY_ROTATION_DAYS."""
    days = current_app.config["AUTHGATE_KEY_ROTATION_DAYS"]
    if not days:
        return []
    age = timedelta(days=days)
    now = datetime.now(UTC)
    # A cheap look first, without the lock: rotate() looks again under it.
    by_alg: dict[str, list] = {}
    for key in keys.list_keys():
        by_alg.setdefault(key.alg, []).append((keys.state_of(key, now), key))
    due = any(
        not any(s == "next" for s, _ in found) and any(s == "active" and now - k.activates_at >= age for s, k in found)
        for found in by_alg.values()
    )
    db.session.rollback()
    if not due:
        return []
    made = keys.rotate(older_than=age)
    for key in made:
        log.info("rotated: new %s key %s signs from %s", key.alg, key.kid, key.activates_at.isoformat())
    return made


class Housekeeper:
    """One per worker process: a daemon thread doing the server's periodic chores."""

    def __init__(self, app: Flask):
        self.app = app
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        """Start the thread once (called at each request; cheap after the first)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="authgate-housekeeper", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        tick = min(TICK, self.app.config["AUTHGATE_MAINTENANCE_SECONDS"] or TICK)
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(tick)

    def tick(self) -> None:
        """One round of chores; a failure (the database away) is logged and the next round tries again."""
        with self.app.app_context():
            for chore in (keys.record_settings, rotate_if_due, lambda: purge_if_due(self.holder)):
                try:
                    chore()
                except Exception:
                    db.session.rollback()
                    log.warning("housekeeping failed; trying again later", exc_info=True)
            db.session.remove()


def init_app(app: Flask) -> Housekeeper | None:
    """Start the housekeeper with the first request this process serves, unless maintenance is off."""
    if not app.config["AUTHGATE_MAINTENANCE_SECONDS"]:
        return None
    housekeeper = Housekeeper(app)
    app.before_request(housekeeper.start)
    return housekeeper
