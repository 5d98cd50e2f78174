"""A unique key settles a race between two writers; the loser gets the service's own validation error."""

import pytest

from app.services import ValidationError, clients, idps, roles, users


def _blind_once(monkeypatch, module, name):
    """Make the service's own uniqueness check miss once, as a request racing another would."""
    real = getattr(module, name)
    calls = {"n": 0}

    def lookup(*args, **kwargs):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(*args, **kwargs)

    monkeypatch.setattr(module, name, lookup)


def test_a_username_taken_meanwhile(app, make_client, make_user, monkeypatch):
    make_client(client_id="web")
    make_user("web", "alice")
    _blind_once(monkeypatch, users, "find_user")
    with pytest.raises(ValidationError) as caught:
        users.create_user("web", "alice", password="correct horse", email="other@example.com")
    assert caught.value.errors == {"username": "'alice' is already taken in this client"}


def test_an_email_taken_meanwhile(app, make_client, make_user, monkeypatch):
    make_client(client_id="web")
    make_user("web", "alice", email="a@example.com")
    make_user("web", "bob", email="b@example.com")
    _blind_once(monkeypatch, users, "find_user_by_email")
    with pytest.raises(ValidationError) as caught:
        users.update_user("web", "bob", email="a@example.com")
    assert caught.value.field == "email"


def test_a_client_id_taken_meanwhile(app, make_client, monkeypatch):
    make_client(client_id="web")
    _blind_once(monkeypatch, clients, "find_client")
    with pytest.raises(ValidationError) as caught:
        clients.create_client(client_id="web", name="Web again", redirect_uris=["http://127.0.0.1:8765/cb"])
    assert caught.value.errors == {"client_id": "'web' is already taken"}
    assert len(clients.list_clients().items) == 1


def test_a_role_taken_meanwhile(app, make_client, make_role, monkeypatch):
    make_client(client_id="web")
    make_role("web", "ROLE_ADMIN")
    _blind_once(monkeypatch, roles, "find_role")
    with pytest.raises(ValidationError) as caught:
        roles.create_role("web", "ROLE_ADMIN")
    assert caught.value.field == "name"


def test_a_provider_slug_taken_meanwhile(app, make_client, monkeypatch):
    make_client(client_id="web")
    idps.create_provider("web", "github", upstream_client_id="upstream", client_secret="s3cret")
    _blind_once(monkeypatch, idps, "find_provider")
    with pytest.raises(ValidationError) as caught:
        idps.create_provider("web", "github", upstream_client_id="upstream", client_secret="s3cret")
    assert caught.value.field == "slug"
