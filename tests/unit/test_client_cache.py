"""The protocol's client cache: writes through the services are seen at once; others within the TTL."""

import sqlalchemy as sa

from app.extensions import db
from app.models import Client
from app.runtime import runtime
from app.services import client_cache, clients


def test_cached_client_is_a_detached_copy(app, make_client):
    make_client(client_id="web")
    first = client_cache.cached_client("web")
    assert first is client_cache.cached_client("web")
    assert first not in db.session
    assert first.client_id == "web" and first.id


def test_writes_through_the_service_are_seen_at_once(app, make_client):
    _, old_secret = make_client(client_id="web")
    assert client_cache.cached_client("web").check_client_secret(old_secret)
    new_secret = clients.rotate_secret("web")
    assert not client_cache.cached_client("web").check_client_secret(old_secret)
    assert client_cache.cached_client("web").check_client_secret(new_secret)
    clients.update_client("web", token_format="opaque")
    assert client_cache.cached_client("web").token_format == "opaque"
    clients.delete_client("web")
    assert client_cache.cached_client("web") is None


def test_a_change_made_by_another_process_shows_after_the_ttl(app, make_client, monkeypatch):
    make_client(client_id="web")
    assert client_cache.cached_client("web").name == "Web"
    # Another process (the CLI, another worker) renames it: this worker keeps its copy until the TTL runs out.
    db.session.execute(sa.update(Client).values(name="Renamed"))
    db.session.commit()
    assert client_cache.cached_client("web").name == "Web"
    import time

    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + app.config["AUTHGATE_CLIENT_CACHE_SECONDS"] + 1)
    assert client_cache.cached_client("web").name == "Renamed"


def test_unknown_ids_are_not_cached(app):
    cache = client_cache.client_cache()
    for n in range(50):
        assert client_cache.cached_client(f"nope-{n}") is None
    assert cache._entries == {}


def test_ttl_zero_turns_the_cache_off(app, make_client):
    app.config["AUTHGATE_CLIENT_CACHE_SECONDS"] = 0
    runtime().clients.seconds = 0
    make_client(client_id="web")
    assert client_cache.cached_client("web") in db.session  # straight from the database session
    assert client_cache.client_cache()._entries == {}
