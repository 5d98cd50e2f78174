"""The hosted login and consent pages, scoped to the client of the pending request."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, BrowserSession, Consent
from app.services import users as user_service
from tests.helpers import forms, query_of
from tests.integration.helpers import PASSWORD, REDIRECT_URI, exchange, start

FAILED = "Invalid username or password."


def test_login_page_names_the_client_and_has_the_contract_fields(make_tenant):
    tenant = make_tenant()
    _, page = start(tenant)
    assert page.status_code == 200
    assert "Sign in" in page.text and "Web App" in page.text
    (form,) = forms(page.text)
    assert {"username", "password", "csrf_token", "rid"} <= set(form.fields)


@pytest.mark.parametrize(
    ("username", "password", "audited_as"),
    [
        ("alice", "wrong password", "alice"),  # wrong password
        ("mallory", PASSWORD, None),  # unknown user: what was typed is not kept (it may be a password)
        ("bob", PASSWORD, "bob"),  # disabled user
        ("carol", PASSWORD, None),  # a user of another client
    ],
)
def test_every_failed_login_looks_the_same(make_tenant, make_client, make_user, username, password, audited_as):
    tenant = make_tenant()
    make_user("web", "bob", password=PASSWORD, enabled=False)
    make_client(client_id="shop", redirect_uris=[REDIRECT_URI])
    make_user("shop", "carol", password=PASSWORD)
    browser, page = start(tenant)
    response = browser.login(page, username, password)
    assert response.status_code == 200
    assert FAILED in response.text
    assert 'value="' + username + '"' in response.text  # what was typed is kept
    assert "Location" not in response.headers
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BrowserSession)) == 0
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.kind == "login_failed"))
    assert event.username == audited_as and password not in str(event.detail)


def test_login_by_email_and_success_is_audited(make_tenant):
    tenant = make_tenant()
    browser, page = start(tenant)
    landed = browser.login(page, "ALICE@example.com", PASSWORD)
    assert landed.status_code == 302 and "code=" in landed.headers["Location"]
    db.session.expire_all()
    sign_ins = sa.select(AuditEvent.kind).where(AuditEvent.user_id == tenant.user.id, AuditEvent.kind.like("login_%"))
    assert db.session.scalars(sign_ins).all() == ["login_succeeded"]


def test_empty_fields_show_errors_next_to_them(make_tenant):
    tenant = make_tenant()
    browser, page = start(tenant)
    response = browser.submit(page, {"username": "", "password": ""})
    assert "Enter your username." in response.text and "Enter your password." in response.text


def test_login_without_csrf_token_is_refused(make_tenant):
    tenant = make_tenant()
    browser, page = start(tenant)
    response = browser.submit(page, {"username": "alice", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 400 and "Please try again" in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BrowserSession)) == 0


def test_login_page_without_a_request_explains_itself(make_tenant):
    tenant = make_tenant()
    response = tenant.browser().get("/login")
    assert response.status_code == 400 and "Start from your application" in response.text


def test_login_hint_fills_the_username(make_tenant):
    tenant = make_tenant()
    _, page = start(tenant, login_hint="alice@example.com")
    assert forms(page.text)[0].fields["username"] == "alice@example.com"


def test_rehash_when_the_cost_changes(make_tenant, app):
    tenant = make_tenant()
    app.config["AUTHGATE_BCRYPT_ROUNDS"] = 5
    browser, page = start(tenant)
    browser.login(page, "alice", PASSWORD)
    db.session.expire_all()
    user = user_service.get_user(user_service.get_client("web"), "alice")
    assert user.password_hash.startswith("$2b$05$")


def signed_in(tenant):
    browser, page = start(tenant)
    landed = browser.login(page, "alice", PASSWORD)
    assert landed.status_code == 302
    return browser


def test_prompt_none_with_a_session_returns_a_code(make_tenant):
    tenant = make_tenant()
    browser = signed_in(tenant)
    _, landed = start(tenant, browser, prompt="none")
    assert landed.status_code == 302 and "code" in query_of(landed.headers["Location"])


def test_prompt_login_asks_again(make_tenant):
    tenant = make_tenant()
    browser = signed_in(tenant)
    _, page = start(tenant, browser, prompt="login")
    assert page.status_code == 200 and 'name="password"' in page.text
    landed = browser.login(page, "alice", PASSWORD)
    assert landed.status_code == 302 and "code" in query_of(landed.headers["Location"])


def test_max_age_asks_again_when_the_sign_in_is_older(make_tenant):
    tenant = make_tenant()
    browser = signed_in(tenant)
    db.session.execute(sa.update(BrowserSession).values(auth_time=BrowserSession.auth_time - 600))
    db.session.commit()
    _, landed = start(tenant, browser, max_age="3600")
    assert landed.status_code == 302
    _, page = start(tenant, browser, max_age="60")
    assert page.status_code == 200 and 'name="password"' in page.text


def test_a_session_for_one_client_does_not_sign_in_to_another(make_tenant):
    web = make_tenant()
    shop = make_tenant(client_id="shop", roles=())
    browser = signed_in(web)
    _, page = start(shop, browser)
    assert page.status_code == 200 and "Shop App" in page.text
    # alice of "web" cannot sign in to "shop" either: shop's alice is another person.
    response = browser.login(page, "alice", "not shop's password")
    assert FAILED in response.text


def test_disabled_user_loses_the_session(make_tenant):
    tenant = make_tenant()
    browser = signed_in(tenant)
    user_service.set_enabled("web", "alice", False)
    _, landed = start(tenant, browser, prompt="none")
    assert query_of(landed.headers["Location"])["error"] == "login_required"


# --- consent ------------------------------------------------------------------------------------


def test_consent_is_asked_then_remembered(make_tenant):
    tenant = make_tenant(require_consent=True)
    browser, page = start(tenant)
    consent = browser.login(page, "alice", PASSWORD)
    assert consent.status_code == 200 and "Allow Web App?" in consent.text
    assert list(forms(consent.text)[0].buttons) == [("decision", "deny"), ("decision", "allow")]
    assert "See your name and username" in consent.text
    landed = browser.submit(consent, {"decision": "allow"})
    code = query_of(landed.headers["Location"])["code"]
    assert exchange(tenant, code).status_code == 200
    db.session.expire_all()
    assert db.session.get(Consent, (tenant.user.client_pk, tenant.user.id)).scopes == ["openid", "profile"]
    # The same scopes again: no question.
    _, landed = start(tenant, browser)
    assert landed.status_code == 302 and "code" in query_of(landed.headers["Location"])
    # More scopes: asked again.
    _, page = start(tenant, browser, scope="openid profile email")
    assert page.status_code == 200 and "See your email address" in page.text


def test_consent_denied(make_tenant):
    tenant = make_tenant(require_consent=True)
    browser, page = start(tenant)
    consent = browser.login(page, "alice", PASSWORD)
    landed = browser.submit(consent, {"decision": "deny"})
    params = query_of(landed.headers["Location"])
    assert params["error"] == "access_denied" and params["state"] == "xyz" and params["iss"] == tenant.url


def test_prompt_consent_asks_even_when_remembered(make_tenant):
    tenant = make_tenant(require_consent=True)
    browser, page = start(tenant)
    browser.submit(browser.login(page, "alice", PASSWORD), {"decision": "allow"})
    _, page = start(tenant, browser, prompt="consent")
    assert page.status_code == 200 and "Allow Web App?" in page.text


def test_prompt_none_when_consent_is_missing(make_tenant):
    tenant = make_tenant(require_consent=True)
    browser, page = start(tenant)
    browser.login(page, "alice", PASSWORD)  # signed in, consent not given
    _, landed = start(tenant, browser, prompt="none")
    assert query_of(landed.headers["Location"])["error"] == "consent_required"


def test_client_without_consent_never_asks(make_tenant):
    tenant = make_tenant(require_consent=False)
    browser, page = start(tenant)
    assert browser.login(page, "alice", PASSWORD).status_code == 302
