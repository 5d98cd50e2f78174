"""The server's housekeeping: recorded settings, automatic rotation, purging under a lease."""

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, BrowserSession, RevokedJti, SigningKey
from app.runtime import runtime
from app.services import keys, maintenance, state
from tests.helpers import make_app


def test_purge_removes_what_expired_and_keeps_what_lives(app, make_client, make_user):
    client, _ = make_client(client_id="web")
    user = make_user("web")
    now = datetime.now(UTC)
    app.config["AUTHGATE_AUDIT_RETENTION_DAYS"] = 30
    db.session.add_all(
        [
            RevokedJti(jti="old", expires_at=now - timedelta(seconds=1)),
            RevokedJti(jti="live", expires_at=now + timedelta(hours=1)),
            BrowserSession(id="gone", client_pk=client.id, user_id=user.id, auth_time=0, expires_at=now - timedelta(1)),
            BrowserSession(id="here", client_pk=client.id, user_id=user.id, auth_time=0, expires_at=now + timedelta(1)),
            AuditEvent(kind="login_failed", at=now - timedelta(days=31), detail={}),
            AuditEvent(kind="login_failed", at=now - timedelta(days=29), detail={}),
        ]
    )
    db.session.commit()
    counts = maintenance.purge_if_due("test")
    assert counts is not None
    assert counts["revoked_jtis"] == 1 and counts["sessions"] == 1 and counts["audit_events"] == 1
    assert db.session.scalars(sa.select(RevokedJti.jti)).all() == ["live"]
    assert db.session.scalars(sa.select(BrowserSession.id)).all() == ["here"]
    failures = sa.select(AuditEvent).where(AuditEvent.kind == "login_failed")
    assert [e.at.date() for e in db.session.scalars(failures)] == [(now - timedelta(days=29)).date()]


def test_audit_retention_zero_keeps_every_event(app):
    app.config["AUTHGATE_AUDIT_RETENTION_DAYS"] = 0
    db.session.add(AuditEvent(kind="login_failed", at=datetime.now(UTC) - timedelta(days=3650), detail={}))
    db.session.commit()
    assert maintenance.purge_all()["audit_events"] == 0


def test_two_concurrent_purges_do_not_both_run(app):
    """Two apps (two workers) ask at the same moment: one purges, the other finds the lease taken."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    apps = [make_app(url, AUTHGATE_MAINTENANCE_SECONDS=3600) for _ in range(2)]
    results: list = []
    barrier = threading.Barrier(2)

    def purge(instance, holder):
        with instance.app_context():
            barrier.wait()
            results.append(maintenance.purge_if_due(holder))
            db.session.remove()
            db.engine.dispose()

    threads = [threading.Thread(target=purge, args=(a, f"worker-{i}")) for i, a in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 2 and sum(r is not None for r in results) == 1
    # Until the lease runs out nobody purges again; then someone does.
    assert maintenance.purge_if_due("worker-2") is None
    db.session.execute(sa.text("UPDATE server_state SET held_until = NULL"))
    db.session.commit()
    assert maintenance.purge_if_due("worker-2") is not None


def test_a_lease_is_won_once(app):
    assert state.take_lease("lease:test", "a", 60)
    assert not state.take_lease("lease:test", "b", 60)
    state.release_lease("lease:test", "a")
    assert state.take_lease("lease:test", "b", 60)


def test_housekeeper_records_settings_rotates_when_due_and_purges(app):
    app.config.update(AUTHGATE_JWKS_MAX_AGE=1200, AUTHGATE_KEY_REFRESH_SECONDS=10, AUTHGATE_MAINTENANCE_SECONDS=3600)
    old = datetime.now(UTC) - timedelta(days=91)
    db.session.execute(sa.update(SigningKey).where(SigningKey.alg == "ES256").values(activates_at=old))
    db.session.commit()
    housekeeper = maintenance.Housekeeper(app)
    housekeeper.tick()
    db.session.expire_all()
    # The CLI's own environment no longer decides: rotation follows what the server recorded.
    app.config["AUTHGATE_JWKS_MAX_AGE"] = 5
    assert keys.rotation_delay() == timedelta(seconds=1210)
    # The ES256 key was 91 days old: a next key, which activates after the recorded max-age.
    by_state = {(k.alg, keys.state_of(k)): k for k in keys.list_keys()}
    assert ("ES256", "next") in by_state and ("RS256", "next") not in by_state
    assert by_state[("ES256", "next")].activates_at - datetime.now(UTC) > timedelta(seconds=1200)
    # The purge ran (it holds the lease now); a second round rotates and purges nothing more.
    assert state.take_lease(maintenance.PURGE_LEASE, "other", 60) is False
    housekeeper.tick()
    db.session.expire_all()
    assert [keys.state_of(k) for k in keys.list_keys() if k.alg == "ES256"].count("next") == 1


def test_rotation_off_when_days_is_zero(app):
    app.config["AUTHGATE_KEY_ROTATION_DAYS"] = 0
    db.session.execute(sa.update(SigningKey).values(activates_at=datetime.now(UTC) - timedelta(days=999)))
    db.session.commit()
    assert maintenance.rotate_if_due() == []


def test_the_first_request_starts_the_housekeeper_and_the_cli_does_not(app):
    assert runtime().housekeeper is None  # the tests' apps run none
    served = make_app(app.config["SQLALCHEMY_DATABASE_URI"], AUTHGATE_MAINTENANCE_SECONDS=3600)
    with served.app_context():
        housekeeper = runtime().housekeeper
        assert housekeeper is not None and housekeeper._thread is None
    served.test_cli_runner().invoke(args=["keys", "list"])
    assert housekeeper._thread is None
    try:
        served.test_client().get("/healthz")
        assert housekeeper._thread is not None and housekeeper._thread.is_alive()
    finally:
        housekeeper.stop()
        with served.app_context():
            db.session.remove()
            db.engine.dispose()
    assert not housekeeper._thread.is_alive()
