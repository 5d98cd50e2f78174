"""The protocol endpoints' per-process cache of clients, and the one query that finds a client."""

import time
from typing import cast

import sqlalchemy as sa

from app.extensions import db
from app.models import Client
from app.runtime import runtime

_BY_CLIENT_ID = sa.select(Client).where(Client.client_id == sa.bindparam("client_id"))
# No client_id is longer than its column; a longer one is not looked up at all.
CLIENT_ID_MAX: int = cast(sa.String, Client.__table__.c.client_id.type).length or 64


def find_client(client_id: str) -> Client | None:
    """The client with this id; None for an id no client can have (not a string, empty, too long, NUL).

    PostgreSQL fails on text holding a NUL instead of finding nothing, so such an id from a URL,
    a form or a header never reaches the query, whichever page or endpoint it came through.
    """
    if not isinstance(client_id, str) or not client_id or len(client_id) > CLIENT_ID_MAX or "\x00" in client_id:
        return None
    return db.session.scalar(_BY_CLIENT_ID, {"client_id": client_id})


class ClientCache:
    """Clients recently used by the protocol endpoints of this process, as detached copies.

    The token endpoint looks its client up on every request; this saves that query. A write
    through this module drops the entry at once in this process; other worker processes see a
    change (a rotated secret, a deleted client) within `seconds`.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._entries: dict[str, tuple[float, Client]] = {}

    def get(self, client_id: str) -> Client | None:
        if self.seconds <= 0:
            return find_client(client_id)
        now = time.monotonic()
        hit = self._entries.get(client_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        client = find_client(client_id)
        if client is None:
            return None  # misses are not kept: unknown ids must not fill the cache
        copy = Client(**{column.key: getattr(client, column.key) for column in Client.__table__.columns})
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[client_id] = (now + self.seconds, copy)
        return copy

    def invalidate(self, client_id: str) -> None:
        self._entries.pop(client_id, None)


def client_cache() -> ClientCache:
    """This process's client cache."""
    return runtime().clients


def cached_client(client_id: str) -> Client | None:
    """The client for the protocol's hot path (read-only: never change or add the returned object)."""
    if not isinstance(client_id, str) or not client_id:
        return None
    return client_cache().get(client_id)
