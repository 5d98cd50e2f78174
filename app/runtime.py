"""Per-process state: built once in `create_app`, reached through `runtime()`.

Everything a worker keeps in memory between requests lives on this one object: the parsed
signing keys, the protocol's client cache, the public documents served without entering Flask,
and what was fetched from upstream identity providers. Nothing of it is built at import time,
and two apps in one process (as in the tests) never share any of it.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, current_app

if TYPE_CHECKING:
    from app.oauth.published import PublishedDocuments
    from app.services.client_cache import ClientCache
    from app.services.guard import Guard
    from app.services.keys import KeyRing
    from app.services.mail import Outbox
    from app.services.maintenance import Housekeeper

EXTENSION = "authgate"


class ExpiringCache:
    """A small dict whose entries expire; for documents fetched from elsewhere."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, value: Any, max_age: float) -> None:
        self._entries[key] = (time.monotonic() + max_age, value)


@dataclass(eq=False)
class Runtime:
    keyring: KeyRing
    clients: ClientCache
    published: PublishedDocuments
    # Brute-force protection: its counters (Redis or memory) and this worker's password-hashing slots.
    guard: Guard
    # Background threads for mail that must not hold up a request (reset requests).
    outbox: Outbox
    # Upstream discovery documents and key sets, by URL.
    upstream: ExpiringCache = field(default_factory=ExpiringCache)
    # The bodies of our own discovery document and JWKS, built once per key set.
    documents: dict[str, Any] = field(default_factory=dict)
    # The thread that records settings, rotates keys when due and purges (started by the first request).
    housekeeper: Housekeeper | None = None


def init_app(app: Flask) -> Runtime:
    """Build the app's per-process state and put the published documents in front of it."""
    from app.oauth.published import PublishedDocuments
    from app.services import guard
    from app.services.client_cache import ClientCache
    from app.services.keys import KeyRing
    from app.services.mail import Outbox

    published = PublishedDocuments(app.wsgi_app)
    app.wsgi_app = published  # type: ignore[method-assign]
    state = Runtime(
        keyring=KeyRing(app.config["AUTHGATE_KEY_REFRESH_SECONDS"]),
        clients=ClientCache(app.config["AUTHGATE_CLIENT_CACHE_SECONDS"]),
        published=published,
        guard=guard.init_app(app),
        outbox=Outbox(app),
    )
    if app.config["AUTHGATE_WORKERS"] > 1 and not app.config["AUTHGATE_REDIS_URL"]:
        app.logger.warning(
            "%d workers without AUTHGATE_REDIS_URL: each counts sign-in failures alone, so the brute-force "
            "limits are that many times looser; set AUTHGATE_REDIS_URL",
            app.config["AUTHGATE_WORKERS"],
        )
    app.extensions[EXTENSION] = state
    return state


def runtime() -> Runtime:
    """The current app's per-process state."""
    return current_app.extensions[EXTENSION]


def sqlite_pragmas(engine: sa.Engine) -> None:
    """Enforce foreign keys on SQLite and let readers and one writer work side by side."""
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL is safe from corruption; it only skips the fsync per commit (a power cut
        # may lose the last transactions, never the database).
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
