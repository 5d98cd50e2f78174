"""Signing keys: encryption at rest, rotation states, the per-process key ring."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import SigningKey
from app.services import ValidationError
from app.services import keys as service


def served_with(app, **settings):
    """Record the settings a serving worker would record (rotation times follow them)."""
    for name, value in settings.items():
        app.config[f"AUTHGATE_{name.upper()}"] = value
    service.record_settings()


def states(alg):
    return [service.state_of(k) for k in service.list_keys() if k.alg == alg]


def test_each_algorithm_has_one_active_key(app):
    keys = service.list_keys()
    assert sorted(k.alg for k in keys) == ["ES256", "EdDSA", "RS256"]
    assert all(service.state_of(k) == "active" for k in keys)
    assert service.ensure_keys() == []


def test_private_keys_are_encrypted_at_rest(app):
    for key in service.list_keys():
        assert "d" not in key.public_jwk
        stored = key.private_jwk_encrypted
        # Quoted names: a quote is not in the ciphertext's base64 alphabet, so this cannot match by chance.
        assert '"d"' not in stored and '"kty"' not in stored
        private = json.loads(service.decrypt(stored, app.config["SECRET_KEY"], service.PURPOSE))
        assert private["kid"] == key.kid and "d" in private


def test_rotation_publishes_next_key_before_it_signs(app):
    served_with(app, jwks_max_age=600)
    ring = service.keyring()
    old = ring.signing_key("ES256")
    (new,) = service.rotate("ES256")
    assert states("ES256") == ["next", "active"]
    # The new key is published at once but the old one keeps signing until caches have seen it.
    assert new.kid in {k.kid for k in ring.published()}
    assert ring.signing_key("ES256").kid == old.kid
    assert new.activates_at - datetime.now(UTC) > timedelta(seconds=590)


def test_next_key_signs_after_the_cache_lifetime(app):
    served_with(app, jwks_max_age=600)
    (new,) = service.rotate("RS256")
    later = datetime.now(UTC) + timedelta(seconds=601)
    by_kid = {k.kid: service.state_of(k, later) for k in service.list_keys() if k.alg == "RS256"}
    assert sorted(by_kid.values()) == ["active", "retired"]
    assert by_kid[new.kid] == "active"
    # The old key stays published until every token it signed has expired.
    much_later = later + service.RETENTION
    assert sorted(service.state_of(k, much_later) for k in service.list_keys() if k.alg == "RS256") == [
        "active",
        "expired",
    ]


def test_second_rotation_while_pending_is_refused(app):
    served_with(app, jwks_max_age=600)
    service.rotate("EdDSA")
    with pytest.raises(ValidationError, match="already pending"):
        service.rotate("EdDSA")


def test_rotate_now_signs_at_once_and_keeps_the_old_key_published(app):
    ring = service.keyring()
    old = ring.signing_key("RS256")
    (new,) = service.rotate("RS256", immediately=True)
    assert ring.signing_key("RS256").kid == new.kid
    assert {old.kid, new.kid} <= {k.kid for k in ring.published()}
    assert sorted(states("RS256")) == ["active", "retired"]


def test_rotate_now_drops_a_pending_key_that_never_signed(app):
    served_with(app, jwks_max_age=600)
    (pending,) = service.rotate("ES256")
    (new,) = service.rotate("ES256", immediately=True)
    kids = set(db.session.scalars(sa.select(SigningKey.kid).where(SigningKey.alg == "ES256")))
    assert pending.kid not in kids and new.kid in kids


def test_rotate_all_algorithms(app):
    made = service.rotate(immediately=True)
    assert sorted(k.alg for k in made) == ["ES256", "EdDSA", "RS256"]


def test_the_version_poll_keeps_the_keys_while_the_database_is_away(app, monkeypatch):
    app.config["AUTHGATE_KEY_REFRESH_SECONDS"] = 30
    ring = service.KeyRing(30)
    signing = ring.signing_key("RS256")

    def unreachable():
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(service.time, "monotonic", lambda real=service.time.monotonic: real() + 5)
    monkeypatch.setattr(db.engine, "connect", unreachable)
    assert ring.signing_key("RS256").kid == signing.kid
    assert ring.by_kid(signing.kid) is not None


def test_the_version_poll_reloads_after_a_revocation_elsewhere(app, monkeypatch):
    ring = service.KeyRing(30)
    service.rotate("ES256", immediately=True)
    retired = next(k for k in service.list_keys() if k.alg == "ES256" and service.state_of(k) == "retired")
    assert ring.by_kid(retired.kid) is not None
    service.revoke(retired.kid)  # invalidates this app's ring, not the one made here
    assert ring.by_kid(retired.kid) is not None  # within the second
    monkeypatch.setattr(service.time, "monotonic", lambda real=service.time.monotonic: real() + 1.5)
    assert ring.by_kid(retired.kid) is None
