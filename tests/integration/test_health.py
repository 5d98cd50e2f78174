"""Liveness, readiness with and without Redis, and the start-up warning about workers without Redis."""

import logging

import pytest

# A port nothing listens on (tcpmux, reserved; binding it needs root).
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
WORKERS_WARNING = "workers without AUTHGATE_REDIS_URL"


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"


def test_readyz_has_no_redis_check_without_redis(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert "redis" not in response.json["checks"]


@pytest.mark.redis
def test_readyz_checks_redis_when_configured(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.settings(AUTHGATE_REDIS_URL=UNREACHABLE_REDIS)
def test_readyz_is_503_naming_redis_when_it_does_not_answer(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.json["status"] == "unavailable"
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["redis"].startswith("ConnectionError:"), response.json


def _warnings(caplog) -> list[str]:
    """The warnings logged while the app was built (the `app` fixture runs in the test's setup)."""
    return [r.getMessage() for r in caplog.get_records("setup") if r.levelno == logging.WARNING]


@pytest.mark.settings(AUTHGATE_WORKERS=4)
def test_several_workers_without_redis_are_warned_about(caplog, app):
    (warning,) = [message for message in _warnings(caplog) if WORKERS_WARNING in message]
    assert warning.startswith("4 workers without AUTHGATE_REDIS_URL")


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_WORKERS=4)
def test_several_workers_with_redis_are_not_warned_about(caplog, app):
    assert not [message for message in _warnings(caplog) if WORKERS_WARNING in message]
