"""Key lifecycle as relying parties and operators see it: only published keys verify, revocation, all workers."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import requests
import sqlalchemy as sa

from app.extensions import db
from app.models import SigningKey
from app.services import keys as key_service
from tests.helpers import jwks_of, make_app
from tests.integration.helpers import run_code_flow
from tests.integration.test_logout_keys_discovery import kid_of


def introspect(tenant, token):
    response = requests.post(
        f"{tenant.url}/oauth2/introspect", data={"token": token}, auth=(tenant.client_id, tenant.secret), timeout=5
    )
    return response.json()["active"]


def userinfo(tenant, token):
    return requests.get(f"{tenant.url}/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"}, timeout=5)


def published_kids(tenant):
    return {k["kid"] for k in jwks_of(tenant.url).as_dict()["keys"]}


def test_a_token_signed_by_an_expired_key_is_inactive(make_tenant):
    tenant = make_tenant(signing_alg="ES256")
    token, _ = run_code_flow(tenant, tenant.session())
    kid = kid_of(token["access_token"])
    assert introspect(tenant, token["access_token"]) is True
    key_service.rotate("ES256", immediately=True)
    # The old key retired long enough ago that it left the JWKS (the token itself has not expired).
    long_ago = datetime.now(UTC) - key_service.RETENTION - timedelta(minutes=1)
    db.session.execute(sa.update(SigningKey).where(SigningKey.kid == kid).values(retired_at=long_ago))
    db.session.commit()
    assert kid not in published_kids(tenant)
    assert introspect(tenant, token["access_token"]) is False
    assert userinfo(tenant, token["access_token"]).status_code == 401


def test_revoking_a_key_ends_every_token_it_signed(make_tenant, runner):
    tenant = make_tenant(signing_alg="RS256")
    token, _ = run_code_flow(tenant, tenant.session())
    kid = kid_of(token["access_token"])
    refused = runner.invoke(args=["keys", "revoke", kid])
    assert refused.exit_code == 2 and "--replace" in refused.output
    assert introspect(tenant, token["access_token"]) is True

    done = runner.invoke(args=["keys", "revoke", kid, "--replace", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["revoked"]["state"] == "revoked" and result["replacement"]["state"] == "active"
    assert kid not in published_kids(tenant)
    assert result["replacement"]["kid"] in published_kids(tenant)
    assert introspect(tenant, token["access_token"]) is False
    assert userinfo(tenant, token["access_token"]).status_code == 401
    # New tokens are signed by the replacement and work.
    fresh, _ = run_code_flow(tenant, tenant.session(), nonce="fresh")
    assert kid_of(fresh["access_token"]) == result["replacement"]["kid"]
    assert introspect(tenant, fresh["access_token"]) is True


def test_revoke_an_unknown_or_revoked_key_exits_2_with_one_line(runner):
    unknown = runner.invoke(args=["keys", "revoke", "no-such-kid"])
    assert unknown.exit_code == 2 and unknown.output.strip().count("\n") == 0 and "no-such-kid" in unknown.output
    key_service.rotate("EdDSA", immediately=True)
    retired = next(k for k in key_service.list_keys() if k.alg == "EdDSA" and key_service.state_of(k) == "retired")
    assert runner.invoke(args=["keys", "revoke", retired.kid]).exit_code == 0
    again = runner.invoke(args=["keys", "revoke", retired.kid])
    assert again.exit_code == 2 and "already" in again.output


def test_a_kid_beginning_with_a_dash_is_revoked_like_any_other(runner):
    """Thumbprint kids are base64url: one in 32 begins with "-", which must not read as an option."""
    key_service.rotate("EdDSA", immediately=True)
    retired = next(k for k in key_service.list_keys() if k.alg == "EdDSA" and key_service.state_of(k) == "retired")
    retired.kid = "-eDashFirst"
    db.session.commit()
    done = runner.invoke(args=["keys", "revoke", "-eDashFirst"])
    assert done.exit_code == 0, done.output
    assert "-eDashFirst" in done.output
    assert key_service.state_of(db.session.scalar(sa.select(SigningKey).where(SigningKey.kid == "-eDashFirst"))) == (
        "revoked"
    )


def test_rotate_now_reaches_another_worker_within_two_seconds(app):
    """Two apps share only the database, as two worker processes do; both re-read keys only every 30 s."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    other = make_app(url, AUTHGATE_KEY_REFRESH_SECONDS=30)
    try:
        with other.app_context():
            before = key_service.keyring().signing_key("ES256").kid
        app.config["AUTHGATE_KEY_REFRESH_SECONDS"] = 30
        (new,) = key_service.rotate("ES256", immediately=True)
        deadline = time.monotonic() + 2
        seen = before
        while time.monotonic() < deadline and seen != new.kid:
            time.sleep(0.1)
            with other.app_context():
                seen = key_service.keyring().signing_key("ES256").kid
        assert seen == new.kid
        # A revocation too: the other worker stops trusting the key.
        key_service.revoke(before)
        deadline = time.monotonic() + 2
        trusted = True
        while time.monotonic() < deadline and trusted:
            time.sleep(0.1)
            with other.app_context():
                trusted = key_service.keyring().by_kid(before) is not None
        assert not trusted
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_rotation_is_serialised_so_automatic_rotation_happens_once(app):
    """Two apps (two workers) find the keys due at the same moment: exactly one new key per algorithm."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    apps = [make_app(url), make_app(url)]
    made: list = []
    barrier = threading.Barrier(2)

    def due(instance):
        with instance.app_context():
            barrier.wait()
            made.extend(key_service.rotate(older_than=timedelta(0)))
            db.session.remove()
            db.engine.dispose()

    threads = [threading.Thread(target=due, args=(instance,)) for instance in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(k.alg for k in made) == ["ES256", "EdDSA", "RS256"]
    db.session.expire_all()
    assert sorted(k.alg for k in key_service.list_keys() if key_service.state_of(k) == "next") == [
        "ES256",
        "EdDSA",
        "RS256",
    ]


def test_an_id_token_of_a_revoked_key_is_no_logout_hint(make_tenant):
    tenant = make_tenant(signing_alg="EdDSA")
    token, browser = run_code_flow(tenant, tenant.session())
    key_service.revoke(kid_of(token["id_token"]), replace=True)
    response = browser.get(f"/oauth2/logout?id_token_hint={token['id_token']}")
    assert response.status_code == 400 and "Location" not in response.headers
