"""RP-initiated logout skips its confirmation only for a hint naming the user signed in here."""

import base64
import dataclasses
import json
import time

import sqlalchemy as sa

from app.extensions import db
from app.models import BrowserSession
from app.services.tokens.claims import sign
from tests.helpers import query_of, verify_jwt
from tests.integration.helpers import LOGOUT_URI, PASSWORD, run_code_flow, start
from tests.integration.test_logout_keys_discovery import logout_url


def signed_in(tenant, browser) -> bool:
    _, landed = start(tenant, browser, prompt="none")
    return "code" in query_of(landed.headers["Location"])


def live_sessions() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).where(BrowserSession.ended_at.is_(None)))


def test_another_users_id_token_gets_the_confirmation_page_and_the_victim_stays(make_tenant, make_user):
    tenant = make_tenant()
    _, victim = run_code_flow(tenant, tenant.session())
    mallory = dataclasses.replace(tenant, user=make_user("web", "mallory", password=PASSWORD))
    attackers, _ = run_code_flow(mallory, mallory.session(), nonce="m")
    page = victim.get(logout_url(id_token_hint=attackers["id_token"], post_logout_redirect_uri=LOGOUT_URI))
    assert page.status_code == 200 and "Sign out of Web App?" in page.text
    assert 'name="id_token_hint"' not in page.text and 'name="client_id" value="web"' in page.text
    assert live_sessions() == 2
    assert signed_in(tenant, victim)


def test_a_confirmed_foreign_hint_ends_only_this_browsers_sign_in(make_tenant, make_user):
    tenant = make_tenant()
    _, victim = run_code_flow(tenant, tenant.session())
    mallory = dataclasses.replace(tenant, user=make_user("web", "mallory", password=PASSWORD))
    attackers, attacker_browser = run_code_flow(mallory, mallory.session(), nonce="m")
    page = victim.get(logout_url(id_token_hint=attackers["id_token"], post_logout_redirect_uri=LOGOUT_URI))
    done = victim.submit(page)
    assert done.status_code == 302 and done.headers["Location"] == LOGOUT_URI
    assert not signed_in(tenant, victim)
    # The hint's own session (another browser) was not ended by it.
    assert signed_in(mallory, attacker_browser)


def test_an_access_token_as_hint_is_refused(make_tenant):
    tenant = make_tenant()
    token, browser = run_code_flow(tenant, tenant.session())
    response = browser.get(logout_url(id_token_hint=token["access_token"], post_logout_redirect_uri=LOGOUT_URI))
    assert response.status_code == 400 and "Location" not in response.headers
    assert "access token" in response.text
    assert signed_in(tenant, browser)


def test_an_expired_id_token_of_the_signed_in_user_still_signs_out_at_once(make_tenant, app):
    tenant = make_tenant()
    token, browser = run_code_flow(tenant, tenant.session())
    claims = verify_jwt(token["id_token"], tenant.url, tenant.client_id)
    with app.app_context():
        expired = sign({**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "RS256")
    response = browser.get(logout_url(id_token_hint=expired, post_logout_redirect_uri=LOGOUT_URI, state="e"))
    assert response.status_code == 302 and response.headers["Location"] == f"{LOGOUT_URI}?state=e"
    assert not signed_in(tenant, browser)


def test_a_hint_from_another_sign_in_of_the_same_user_asks_first(make_tenant):
    tenant = make_tenant()
    earlier, _ = run_code_flow(tenant, tenant.session())
    _, browser = run_code_flow(tenant, tenant.session(), nonce="second")
    page = browser.get(logout_url(id_token_hint=earlier["id_token"]))
    assert page.status_code == 200 and "Sign out of Web App?" in page.text
    assert signed_in(tenant, browser)


def test_a_hint_in_a_browser_not_signed_in_asks_first(make_tenant):
    tenant = make_tenant()
    token, _ = run_code_flow(tenant, tenant.session())
    page = tenant.browser().get(logout_url(id_token_hint=token["id_token"]))
    assert page.status_code == 200 and "Sign out of Web App?" in page.text
    assert live_sessions() == 1


def test_a_hint_whose_header_has_a_crit_of_the_wrong_type_is_refused(client):
    """joserfc iterates `crit` as a list: `true` raised TypeError, a 500 (found by test_fuzz_protocol)."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "crit": True}).encode()).rstrip(b"=").decode()
    hint = f"{header}.e30.c2ln"
    response = client.get(logout_url(id_token_hint=hint))
    assert response.status_code == 400
