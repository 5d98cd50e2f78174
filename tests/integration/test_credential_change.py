"""A credential change ends everything: sessions, refresh tokens of both kinds, access tokens."""

import time

import pytest
import sqlalchemy as sa
from authlib.integrations.base_client import OAuthError

from app.extensions import db
from app.models import AuditEvent, BrowserSession
from app.services import sessions
from app.services import users as user_service
from tests.helpers import query_of
from tests.integration.helpers import PASSWORD, introspect, run_code_flow, start, userinfo_status

ONLINE = "openid profile email roles"


def refused(tenant, session, token) -> str:
    with pytest.raises(OAuthError) as info:
        session.refresh_token(f"{tenant.url}/oauth2/token", refresh_token=token["refresh_token"])
    return info.value.error


def two_sign_ins(tenant):
    """A session-bound and an offline sign-in, the second in another browser."""
    online, offline = tenant.session(scope=ONLINE), tenant.session()
    bound, browser = run_code_flow(tenant, online)
    kept, _ = run_code_flow(tenant, offline, nonce="second-nonce")
    return (online, bound, browser), (offline, kept)


def prompt_none_error(tenant, browser):
    _, landed = start(tenant, browser, prompt="none")
    return query_of(landed.headers["Location"]).get("error")


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
def test_a_password_change_ends_both_kinds_of_refresh_token_and_the_access_tokens(make_tenant, token_format):
    tenant = make_tenant(token_format=token_format)
    (online, bound, browser), (offline, kept) = two_sign_ins(tenant)
    assert introspect(tenant, kept["access_token"])["active"] is True
    assert userinfo_status(tenant, bound["access_token"]) == 200

    user_service.set_password(tenant.client_id, "alice", "a brand new password")

    assert refused(tenant, online, bound) == "invalid_grant"
    assert refused(tenant, offline, kept) == "invalid_grant"
    for token in (bound, kept):
        assert introspect(tenant, token["access_token"]) == {"active": False}
        assert introspect(tenant, token["refresh_token"]) == {"active": False}
        assert userinfo_status(tenant, token["access_token"]) == 401
    assert prompt_none_error(tenant, browser) == "login_required"
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).where(BrowserSession.ended_at.is_(None))) == 0
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.kind == "signed_out_everywhere"))
    assert event is not None and event.detail["reason"] == "password_changed" and event.detail["sessions"] == 2


def test_a_jwt_access_token_issued_after_the_change_is_active(make_tenant):
    tenant = make_tenant()
    user_service.set_password(tenant.client_id, "alice", PASSWORD)
    time.sleep(1.05)  # iat has whole seconds: a token of the change's own second counts as before it
    token, _ = run_code_flow(tenant, tenant.session())
    assert introspect(tenant, token["access_token"])["active"] is True


def test_disable_then_enable_ends_the_sign_in(make_tenant):
    tenant = make_tenant()
    (online, bound, browser), (offline, kept) = two_sign_ins(tenant)
    user_service.set_enabled(tenant.client_id, "alice", False)
    user_service.set_enabled(tenant.client_id, "alice", True)
    assert prompt_none_error(tenant, browser) == "login_required"
    assert refused(tenant, online, bound) == "invalid_grant"
    assert refused(tenant, offline, kept) == "invalid_grant"
    assert introspect(tenant, bound["access_token"]) == {"active": False}


def test_enabling_an_enabled_user_or_editing_names_ends_nothing(make_tenant):
    tenant = make_tenant()
    token, browser = run_code_flow(tenant, tenant.session())
    user_service.set_enabled(tenant.client_id, "alice", True)
    user_service.update_user(tenant.client_id, "alice", first_name="Alicia")
    assert introspect(tenant, token["access_token"])["active"] is True
    assert prompt_none_error(tenant, browser) is None


def test_sign_out_everywhere_ends_every_session_and_token(make_tenant):
    tenant = make_tenant()
    (online, bound, browser), (offline, kept) = two_sign_ins(tenant)
    kept = offline.refresh_token(f"{tenant.url}/oauth2/token", refresh_token=kept["refresh_token"])  # 2 rows, 1 family
    assert sessions.sign_out_everywhere(tenant.client_id, "alice") == {"sessions": 2, "families": 2}
    assert refused(tenant, offline, kept) == "invalid_grant"
    assert refused(tenant, online, bound) == "invalid_grant"
    assert prompt_none_error(tenant, browser) == "login_required"


def test_deleting_the_user_ends_their_tokens(make_tenant):
    tenant = make_tenant()
    (_, bound, _), (offline, kept) = two_sign_ins(tenant)
    user_service.delete_user(tenant.client_id, "alice")
    assert refused(tenant, offline, kept) == "invalid_grant"
    assert introspect(tenant, bound["access_token"]) == {"active": False}
