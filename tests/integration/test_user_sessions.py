"""A user's sessions, offline grants and consent in the console and the CLI, each revocable."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import BrowserSession, RefreshToken
from app.services import clients as client_service
from app.services import sessions
from app.services import users as user_service
from app.services.crypto import sha256_hex
from tests.integration.helpers import post, set_up_console, sign_in, text

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 " + "x" * 400


def signed_in_alice(make_client, make_user):
    """alice of shop with a sign-in, an offline grant and a consent; return (user, session, family)."""
    make_client(client_id="shop", name="Shop", scopes="openid profile offline_access")
    user = make_user("shop", "alice", password="old password")
    client = client_service.get_client("shop")
    browser_session = sessions.start(client, user, amr=["pwd"], ip="203.0.113.7", user_agent=USER_AGENT)
    family = str(uuid.uuid4())
    now = datetime.now(UTC)
    db.session.add(
        RefreshToken(
            token_hash=sha256_hex(family), family_id=family, client_pk=client.id, user_id=user.id,
            scope="openid offline_access", session_id=browser_session.id, auth_time=0, amr=["pwd"],
            expires_at=now + timedelta(days=1), family_expires_at=now + timedelta(days=2),
        )
    )  # fmt: skip
    db.session.commit()
    sessions.grant_consent(client, user, ["openid", "offline_access"])
    return user, browser_session, family


@pytest.fixture
def admin(app, runner, client, make_client):
    set_up_console(app, runner)
    sign_in(client)
    return client


def live_session_count(user_id) -> int:
    db.session.expire_all()
    query = sa.select(sa.func.count()).where(BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None))
    return db.session.scalar(query)


def test_a_sign_in_stores_the_ip_and_a_truncated_user_agent(app, make_client, make_user):
    _, browser_session, _ = signed_in_alice(make_client, make_user)
    assert browser_session.ip == "203.0.113.7" and len(browser_session.user_agent) == 255
    assert browser_session.last_seen_at is not None


def test_the_user_page_lists_sessions_offline_grants_and_consent(admin, make_client, make_user):
    _, browser_session, family = signed_in_alice(make_client, make_user)
    page = text(admin.get("/admin/clients/shop/users/alice"))
    assert "203.0.113.7" in page and "Firefox/140.0" in page and "Sign out everywhere" in page
    assert f"/sessions/{browser_session.id}/end" in page and f"/offline/{family}/revoke" in page
    assert "openid offline_access" in page and "Revoke consent" in page


def test_revoking_from_the_console_needs_the_csrf_token(admin, make_client, make_user):
    user, browser_session, _ = signed_in_alice(make_client, make_user)
    response = admin.post(f"/admin/clients/shop/users/alice/sessions/{browser_session.id}/end")
    assert response.status_code == 400
    assert live_session_count(user.id) == 1


def test_end_a_session_revoke_an_offline_grant_and_the_consent(admin, make_client, make_user):
    user, browser_session, family = signed_in_alice(make_client, make_user)
    base = "/admin/clients/shop/users/alice"
    ended = post(admin, f"{base}/sessions/{browser_session.id}/end")
    assert ended.status_code == 303 and ended.headers["Location"] == base
    assert live_session_count(user.id) == 0
    again = post(admin, f"{base}/sessions/{browser_session.id}/end")
    assert again.status_code == 422 and "has no live session" in text(again)

    revoked = post(admin, f"{base}/offline/{family}/revoke", headers={"HX-Request": "true", "HX-Target": "sessions"})
    assert revoked.status_code == 200 and "Offline grant revoked." in text(revoked)
    assert "No offline grants" in text(revoked) and "<html" not in text(revoked)
    db.session.expire_all()
    assert db.session.scalar(sa.select(RefreshToken.revoked_at).where(RefreshToken.family_id == family)) is not None

    assert post(admin, f"{base}/consent/revoke").status_code == 303
    assert not sessions.consent_covers(client_service.get_client("shop"), user, ["openid"])


def test_sign_out_everywhere_from_the_console(admin, make_client, make_user):
    user, _, family = signed_in_alice(make_client, make_user)
    response = post(admin, "/admin/clients/shop/users/alice/sign-out")
    assert response.status_code == 303
    assert live_session_count(user.id) == 0
    assert db.session.scalar(sa.select(RefreshToken.revoked_at).where(RefreshToken.family_id == family)) is not None
    assert user_service.get_user(client_service.get_client("shop"), "alice").credentials_changed_at is not None
    assert "Signed out everywhere" in text(admin.get("/admin/clients/shop/users/alice"))


def test_a_password_change_in_the_console_ends_the_sessions(admin, make_client, make_user):
    user, _, _ = signed_in_alice(make_client, make_user)
    assert post(admin, "/admin/clients/shop/users/alice/password", {"password": "new password"}).status_code == 303
    assert live_session_count(user.id) == 0


# --- the CLI ---------------------------------------------------------------------------


def test_cli_sessions_lists_and_sign_out_ends_everything(runner, make_client, make_user):
    _, browser_session, family = signed_in_alice(make_client, make_user)
    listed = runner.invoke(args=["users", "sessions", "--client", "shop", "--username", "alice", "--json"])
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.output)
    assert [s["id"] for s in data["sessions"]] == [browser_session.id]
    assert data["sessions"][0]["ip"] == "203.0.113.7" and data["sessions"][0]["client_id"] == "shop"
    assert [g["family"] for g in data["offline_grants"]] == [family]
    assert data["consents"][0]["scopes"] == ["offline_access", "openid"]
    table = runner.invoke(args=["users", "sessions", "--client", "shop", "--username", "alice"])
    assert table.exit_code == 0 and browser_session.id[:8] in table.output and "203.0.113.7" in table.output

    out = runner.invoke(args=["users", "sign-out", "--client", "shop", "--username", "alice"])
    assert out.exit_code == 0, out.output
    assert "1 sessions ended, 1 refresh-token families revoked" in out.output
    after = json.loads(
        runner.invoke(args=["users", "sessions", "--client", "shop", "--username", "alice", "--json"]).output
    )
    assert after["sessions"] == [] and after["offline_grants"] == []


@pytest.mark.parametrize("command", ["sessions", "sign-out"])
@pytest.mark.parametrize(("client_id", "username"), [("nope", "alice"), ("shop", "nobody")])
def test_cli_bad_input_is_one_line_and_exit_2(runner, make_client, make_user, command, client_id, username):
    signed_in_alice(make_client, make_user)
    result = runner.invoke(args=["users", command, "--client", client_id, "--username", username])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("Error: ")


def test_using_the_console_keeps_its_own_session_alive(app, admin):
    from app.services.clients import CONSOLE_CLIENT_ID

    console = client_service.get_client(CONSOLE_CLIENT_ID)
    stale = datetime.now(UTC) - timedelta(seconds=app.config["AUTHGATE_SESSION_IDLE_SECONDS"] - 60)
    db.session.execute(
        sa.update(BrowserSession).where(BrowserSession.client_pk == console.id).values(last_seen_at=stale)
    )
    db.session.commit()
    assert admin.get("/admin/").status_code == 200
    db.session.expire_all()
    seen = db.session.scalar(sa.select(BrowserSession.last_seen_at).where(BrowserSession.client_pk == console.id))
    assert seen > datetime.now(UTC) - timedelta(seconds=30)
