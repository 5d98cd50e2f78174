"""Refresh tokens under session lifecycle rules: session-bound or offline, idle and absolute limits."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from authlib.integrations.base_client import OAuthError

from app.extensions import db
from app.models import BrowserSession, RefreshToken
from app.services.crypto import sha256_hex
from tests.helpers import query_of, verify_jwt
from tests.integration.helpers import LOGOUT_URI, introspect, run_code_flow, start

ONLINE = "openid profile email roles"


def refresh(tenant, session, token):
    return session.refresh_token(f"{tenant.url}/oauth2/token", refresh_token=token["refresh_token"])


def refused(tenant, session, token) -> str:
    with pytest.raises(OAuthError) as info:
        refresh(tenant, session, token)
    return info.value.error


def rp_logout(browser, token):
    query = urlencode({"id_token_hint": token["id_token"], "post_logout_redirect_uri": LOGOUT_URI})
    assert browser.get("/oauth2/logout?" + query).status_code == 302


def row_of(token) -> RefreshToken:
    db.session.expire_all()
    digest = sha256_hex(token["refresh_token"])
    return db.session.scalar(sa.select(RefreshToken).where(RefreshToken.token_hash == digest))


def test_a_request_without_offline_access_gets_a_session_bound_token(make_tenant):
    tenant = make_tenant()
    session = tenant.session(scope=ONLINE)
    token, _ = run_code_flow(tenant, session)
    assert "offline_access" not in token["scope"].split()
    row = row_of(token)
    assert not row.is_offline and row.session_id
    sid = verify_jwt(token["id_token"], tenant.url, tenant.client_id)["sid"]
    assert row.session_id == sid
    again = refresh(tenant, session, token)
    assert verify_jwt(again["id_token"], tenant.url, tenant.client_id)["sid"] == sid


def test_logout_ends_a_session_bound_token_but_not_an_offline_one(make_tenant):
    tenant = make_tenant()
    online, offline = tenant.session(scope=ONLINE), tenant.session()
    bound, browser = run_code_flow(tenant, online)
    kept, other_browser = run_code_flow(tenant, offline, nonce="another-nonce")
    rp_logout(browser, bound)
    rp_logout(other_browser, kept)
    assert introspect(tenant, bound["refresh_token"]) == {"active": False}
    assert introspect(tenant, kept["refresh_token"])["active"] is True
    assert refused(tenant, online, bound) == "invalid_grant"
    refreshed = refresh(tenant, offline, kept)
    # The refreshed ID token never names the ended session.
    claims = verify_jwt(refreshed["id_token"], tenant.url, tenant.client_id)
    assert "sid" not in claims and claims["sub"] == tenant.user.sub
    assert refresh(tenant, offline, refreshed)["access_token"]


def test_hosted_logout_ends_session_bound_tokens(make_tenant):
    tenant = make_tenant()
    online = tenant.session(scope=ONLINE)
    token, browser = run_code_flow(tenant, online)
    assert "You are signed out" in browser.submit(browser.get("/logout")).text
    assert refused(tenant, online, token) == "invalid_grant"


def test_narrowing_the_scope_on_refresh_keeps_a_family_offline(make_tenant):
    tenant = make_tenant()
    session = tenant.session()
    token, browser = run_code_flow(tenant, session)
    narrowed = session.refresh_token(f"{tenant.url}/oauth2/token", refresh_token=token["refresh_token"], scope="openid")
    rp_logout(browser, token)
    assert refresh(tenant, session, narrowed)["access_token"]


def test_an_idle_session_ends_its_tokens_and_a_refresh_keeps_it_alive(app, make_tenant):
    tenant = make_tenant()
    session = tenant.session(scope=ONLINE)
    token, browser = run_code_flow(tenant, session)
    sid = row_of(token).session_id
    idle = app.config["AUTHGATE_SESSION_IDLE_SECONDS"]

    def seen(seconds_ago):
        db.session.execute(
            sa.update(BrowserSession)
            .where(BrowserSession.id == sid)
            .values(last_seen_at=datetime.now(UTC) - timedelta(seconds=seconds_ago))
        )
        db.session.commit()

    seen(idle - 30)  # close to the limit: a refresh counts as use
    token = refresh(tenant, session, token)
    db.session.expire_all()
    assert db.session.get(BrowserSession, sid).last_seen_at > datetime.now(UTC) - timedelta(seconds=30)
    seen(idle + 1)
    assert refused(tenant, session, token) == "invalid_grant"
    _, landed = start(tenant, browser, prompt="none")
    assert query_of(landed.headers["Location"])["error"] == "login_required"


def test_a_session_is_touched_at_most_once_a_minute(make_tenant):
    tenant = make_tenant()
    session = tenant.session(scope=ONLINE)
    token, _ = run_code_flow(tenant, session)
    sid = row_of(token).session_id
    db.session.expire_all()
    before = db.session.get(BrowserSession, sid).last_seen_at
    refresh(tenant, session, token)
    db.session.expire_all()
    assert db.session.get(BrowserSession, sid).last_seen_at == before


def test_the_absolute_maximum_ends_a_family_still_in_use(make_tenant):
    import time

    tenant = make_tenant(refresh_token_lifetime=3600, refresh_token_max_lifetime=7200)
    session = tenant.session()
    token, _ = run_code_flow(tenant, session)
    first = row_of(token)
    assert abs((first.expires_at - first.created_at).total_seconds() - 3600) < 2
    assert abs((first.family_expires_at - first.created_at).total_seconds() - 7200) < 2

    # Bring the family's end close: rotations no longer start a new lifetime past it.
    end = datetime.now(UTC) + timedelta(seconds=2)
    family = sa.update(RefreshToken).where(RefreshToken.family_id == first.family_id)
    db.session.execute(family.values(family_expires_at=end))
    db.session.commit()
    token = refresh(tenant, session, token)
    second = row_of(token)
    assert second.family_id == first.family_id
    assert second.expires_at == second.family_expires_at == end
    time.sleep(2.1)
    assert refused(tenant, session, token) == "invalid_grant"


def test_an_offline_refresh_does_not_keep_the_browser_session_alive(app, make_tenant):
    tenant = make_tenant()
    session = tenant.session()
    token, _ = run_code_flow(tenant, session)
    sid = row_of(token).session_id
    long_ago = datetime.now(UTC) - timedelta(seconds=app.config["AUTHGATE_SESSION_IDLE_SECONDS"] - 60)
    db.session.execute(sa.update(BrowserSession).where(BrowserSession.id == sid).values(last_seen_at=long_ago))
    db.session.commit()
    refreshed = refresh(tenant, session, token)
    db.session.expire_all()
    assert db.session.get(BrowserSession, sid).last_seen_at == long_ago
    # The session still lives, so the refreshed ID token still names it.
    assert verify_jwt(refreshed["id_token"], tenant.url, tenant.client_id)["sid"] == sid
