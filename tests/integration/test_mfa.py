"""Second factors over HTTP: TOTP enrolment, the second sign-in step, recovery codes, limits, policies, step-up.

Codes are computed here with pyotp from the key the enrolment page shows; ID tokens are checked
with joserfc against the published JWKS.
"""

import re
import time

import pyotp
import pytest
import requests
from authlib.common.security import generate_token

from app.capabilities import ACR_1FA, ACR_MFA
from tests.helpers import forms, verify_jwt
from tests.integration.helpers import PASSWORD, REDIRECT_URI

STEP = 30


# --- helpers -------------------------------------------------------------------------------------


class Flow:
    """One authorization request of a relying party (Authlib's client), walked by a scripted browser."""

    def __init__(self, tenant, browser=None, **extra):
        self.tenant = tenant
        self.session = tenant.session()
        self.verifier = generate_token(48)
        url, _ = self.session.create_authorization_url(
            f"{tenant.url}/oauth2/authorize", code_verifier=self.verifier, nonce=generate_token(12), **extra
        )
        self.browser = browser or tenant.browser()
        self.page = self.browser.get(url)

    def password(self, password=PASSWORD):
        assert 'name="password"' in self.page.text, self.page.text[:400]
        self.page = self.browser.login(self.page, self.tenant.user.username, password)
        return self.page

    def submit(self, data=None, index=0):
        self.page = self.browser.submit(self.page, data, index)
        return self.page

    def landed(self) -> bool:
        return self.page.status_code == 302 and self.page.headers["Location"].startswith(REDIRECT_URI)

    def token(self) -> dict:
        assert self.landed(), (self.page.status_code, self.page.url, self.page.text[:400])
        return self.session.fetch_token(
            f"{self.tenant.url}/oauth2/token",
            authorization_response=self.page.headers["Location"],
            code_verifier=self.verifier,
        )

    def id_claims(self) -> dict:
        return verify_jwt(self.token()["id_token"], self.tenant.url, self.tenant.client_id)


def secret_on(page) -> str:
    return re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text).group(1)


def codes_on(page) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", page.text)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def now_step() -> int:
    return int(time.time() // STEP)


def enrol_on_account_page(browser, tenant) -> tuple[str, int, list[str]]:
    """Set up an authenticator app on the account page of a signed-in browser; return (key, step used, codes)."""
    page = browser.get(f"/account/{tenant.client_id}/factors")
    assert page.status_code == 200 and "Second factors" in page.text
    page = browser.submit(page, index=0)  # "Set up"
    assert page.status_code == 200 and "Scan this QR code" in page.text, page.text[:400]
    assert "<svg" in page.text and "otpauth://totp/" in page.text
    secret = secret_on(page)
    step = now_step()
    page = browser.submit(page, {"code": code_at(secret, step)})
    codes = codes_on(page)
    assert page.status_code == 200 and len(codes) == 10 and len(set(codes)) == 10
    assert "shown only now" in page.text
    again = browser.get(f"/account/{tenant.client_id}/factors/recovery-codes")
    assert codes_on(again) == []  # shown once
    return secret, step, codes


def signed_in_browser(tenant):
    flow = Flow(tenant)
    flow.password()
    assert flow.landed()
    return flow.browser


@pytest.fixture
def enrolled(make_tenant):
    """A client whose policy is `optional` and its user alice with an authenticator app: (tenant, key, step, codes)."""
    tenant = make_tenant(mfa_policy="optional")
    secret, step, codes = enrol_on_account_page(signed_in_browser(tenant), tenant)
    return tenant, secret, step, codes


# --- enrolment and the second step -------------------------------------------------------------


def test_enrolled_user_signs_in_with_a_code_and_tokens_say_mfa(enrolled):
    tenant, secret, step, _ = enrolled
    flow = Flow(tenant)
    page = flow.password()
    assert page.status_code == 200 and "Two-step verification" in page.text
    assert 'name="code"' in page.text and 'autocomplete="one-time-code"' in page.text
    before = int(time.time())
    flow.submit({"code": code_at(secret, step + 1)})
    claims = flow.id_claims()
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == ACR_MFA
    assert claims["auth_time"] >= before


def test_wrong_and_replayed_codes_are_refused(enrolled):
    tenant, secret, step, _ = enrolled
    flow = Flow(tenant)
    flow.password()
    # The code that confirmed the app was used: a second use within its window is refused.
    page = flow.submit({"code": code_at(secret, step)})
    assert page.status_code == 400 and "That code is not right" in page.text
    page = flow.submit({"code": "000000" if code_at(secret, step + 1) != "000000" else "111111"})
    assert page.status_code == 400 and "That code is not right" in page.text
    flow.submit({"code": code_at(secret, step + 1)})
    assert flow.landed()

    replay = Flow(tenant)
    replay.password()
    page = replay.submit({"code": code_at(secret, step + 1)})
    assert page.status_code == 400 and "That code is not right" in page.text
    assert not replay.landed()


def test_recovery_code_works_once(enrolled):
    tenant, _, _, codes = enrolled
    flow = Flow(tenant)
    flow.password()
    flow.submit({"code": codes[0].upper()})
    assert flow.id_claims()["amr"] == ["pwd", "otp", "mfa"]

    again = Flow(tenant)
    again.password()
    page = again.submit({"code": codes[0]})
    assert page.status_code == 400 and "That code is not right" in page.text
    again.submit({"code": codes[1]})
    assert again.landed()
    account = again.browser.get(f"/account/{tenant.client_id}/factors")
    assert "8 unused codes left" in account.text


def test_new_recovery_codes_replace_the_old_ones(enrolled):
    tenant, _, _, codes = enrolled
    browser = Flow(tenant).browser
    flow = Flow(tenant, browser)
    flow.password()
    flow.submit({"code": codes[0]})
    account = browser.get(f"/account/{tenant.client_id}/factors")
    (new_form,) = [i for i, f in enumerate(forms(account.text)) if f.action.endswith("/factors/recovery-codes")]
    fresh = codes_on(browser.submit(account, index=new_form))
    assert len(fresh) == 10
    later = Flow(tenant)
    later.password()
    assert later.submit({"code": codes[1]}).status_code == 400
    later.submit({"code": fresh[0]})
    assert later.landed()


@pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=3, AUTHGATE_LOCKOUT_WAIT_SECONDS=60)
def test_codes_are_brute_force_limited(enrolled, app):
    tenant, secret, step, _ = enrolled
    flow = Flow(tenant)
    flow.password()
    second_step = flow.page
    for guess in ("123456", "234567", "345678"):
        if guess in (code_at(secret, s) for s in range(step - 1, step + 3)):
            continue
        page = flow.browser.submit(second_step, {"code": guess})
    # Locked: even the right code is turned away now, with a wait.
    page = flow.browser.submit(second_step, {"code": code_at(secret, step + 1)})
    assert page.status_code == 429, page.text[:300]
    assert int(page.headers["Retry-After"]) > 0 and "Too many attempts" in page.text
    with app.app_context():
        from app.services import audit

        assert {"mfa_failed", "mfa_locked"} <= set(audit.kinds())


def test_second_step_does_not_outlive_its_request(enrolled):
    tenant, _, _, _ = enrolled
    fresh = tenant.browser()
    page = fresh.get("/second-factor?rid=nothing")
    assert page.status_code == 400 and "Start from your application" in page.text


# --- policies ------------------------------------------------------------------------------------


def test_policy_required_makes_a_user_enrol_before_the_application_gets_a_code(make_tenant):
    tenant = make_tenant(mfa_policy="required")
    flow = Flow(tenant)
    page = flow.password()
    assert page.status_code == 200 and "Set up an authenticator app" in page.text
    assert page.url.split("?")[0].endswith("/second-factor/enrol")
    assert "<svg" in page.text and "<script" not in page.text.split("<svg", 1)[1].split("</svg>", 1)[0]
    secret = secret_on(page)
    page = flow.submit({"code": "000001"})
    assert page.status_code == 400 and "That code is not right" in page.text
    page = flow.submit({"code": code_at(secret, now_step())})
    assert len(codes_on(page)) == 10
    flow.submit()
    claims = flow.id_claims()
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == ACR_MFA


def test_policy_off_never_asks(make_tenant):
    tenant = make_tenant()
    flow = Flow(tenant, acr_values=ACR_MFA)
    flow.password()
    claims = flow.id_claims()
    assert claims["amr"] == ["pwd"] and claims["acr"] == ACR_1FA
    page = flow.browser.get(f"/account/{tenant.client_id}/factors")
    assert "does not use second factors" in page.text


def test_optional_policy_without_a_factor_signs_in_with_one(make_tenant):
    tenant = make_tenant(mfa_policy="optional")
    flow = Flow(tenant)
    flow.password()
    claims = flow.id_claims()
    assert claims["amr"] == ["pwd"] and claims["acr"] == ACR_1FA


# --- step-up -------------------------------------------------------------------------------------


def test_acr_values_steps_up_a_live_session(make_tenant):
    tenant = make_tenant(mfa_policy="optional")
    browser = signed_in_browser(tenant)
    secret, step, _ = enrol_on_account_page(browser, tenant)

    # Signed in with a password only: a plain request is answered at once...
    plain = Flow(tenant, browser)
    assert plain.landed()
    first = plain.id_claims()
    assert first["acr"] == ACR_1FA

    # ...one asking for MFA gets the second step only (no password again), and an honest auth_time.
    time.sleep(1.1)
    stepped = Flow(tenant, browser, acr_values=f"{ACR_MFA} {ACR_1FA}")
    assert stepped.page.status_code == 200 and "Two-step verification" in stepped.page.text
    assert 'name="password"' not in stepped.page.text
    stepped.submit({"code": code_at(secret, step + 1)})
    claims = stepped.id_claims()
    assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["sid"] == first["sid"] and claims["auth_time"] > first["auth_time"]

    # The session now has two factors: asking again needs nothing more.
    again = Flow(tenant, browser, acr_values=ACR_MFA)
    assert again.landed() and again.id_claims()["acr"] == ACR_MFA


def test_acr_values_with_prompt_none_needs_interaction(make_tenant):
    tenant = make_tenant(mfa_policy="optional")
    browser = signed_in_browser(tenant)
    enrol_on_account_page(browser, tenant)
    flow = Flow(tenant, browser, acr_values=ACR_MFA, prompt="none")
    assert flow.page.status_code == 302
    assert "error=interaction_required" in flow.page.headers["Location"]


def test_acr_values_makes_a_user_without_a_factor_enrol(make_tenant):
    tenant = make_tenant(mfa_policy="optional")
    flow = Flow(tenant, acr_values=ACR_MFA)
    page = flow.password()
    assert "Set up an authenticator app" in page.text
    flow.submit({"code": code_at(secret_on(page), now_step())})
    flow.submit()
    assert flow.id_claims()["acr"] == ACR_MFA


def test_max_age_asks_for_both_factors_again(enrolled):
    tenant, secret, step, _ = enrolled
    flow = Flow(tenant)
    flow.password()
    flow.submit({"code": code_at(secret, step + 1)})
    first = flow.id_claims()
    time.sleep(1.1)
    again = Flow(tenant, flow.browser, max_age="0")
    page = again.password()
    assert "Two-step verification" in page.text
    # The step just used is refused; a recovery code completes it.
    assert again.submit({"code": code_at(secret, step + 1)}).status_code == 400
    again.submit({"code": enrolled[3][0]})
    claims = again.id_claims()
    assert claims["auth_time"] > first["auth_time"] and claims["acr"] == ACR_MFA


# --- account page, discovery, isolation ----------------------------------------------------------


def test_removing_the_app_turns_the_second_step_off(enrolled):
    tenant, _, _, codes = enrolled
    browser = signed_in_browser_with_code(tenant, codes[0])
    account = browser.get(f"/account/{tenant.client_id}/factors")
    (remove,) = [i for i, f in enumerate(forms(account.text)) if f.action.endswith("/factors/totp/remove")]
    page = browser.submit(account, index=remove)
    assert "Set up" in page.text and "unused code" not in page.text
    flow = Flow(tenant)
    flow.password()
    assert flow.landed()


def signed_in_browser_with_code(tenant, code):
    flow = Flow(tenant)
    flow.password()
    flow.submit({"code": code})
    assert flow.landed()
    return flow.browser


def test_account_factors_need_a_sign_in(make_tenant):
    tenant = make_tenant(mfa_policy="optional")
    page = requests.get(f"{tenant.url}/account/{tenant.client_id}/factors", allow_redirects=False, timeout=5)
    assert page.status_code == 302 and page.headers["Location"].endswith(f"/account/{tenant.client_id}")


def test_a_sign_in_to_one_client_manages_no_factors_of_another(make_tenant):
    web = make_tenant(mfa_policy="optional")
    make_tenant(client_id="other", mfa_policy="optional")
    browser = signed_in_browser(web)
    page = browser.http.get(f"{web.url}/account/other/factors", allow_redirects=False)
    assert page.status_code == 302 and page.headers["Location"].endswith("/account/other")


def test_discovery_lists_acr_values(live):
    document = requests.get(f"{live.url}/.well-known/openid-configuration", timeout=5).json()
    assert document["acr_values_supported"] == [ACR_1FA, ACR_MFA]
    assert "acr" in document["claims_supported"]


def test_reset_factors_removes_everything(enrolled, app):
    tenant, _, _, _ = enrolled
    with app.app_context():
        from app.services import mfa
        from app.services.clients import get_client

        client = get_client(tenant.client_id)
        assert mfa.has_factor(tenant.user)
        assert mfa.reset_factors(client, tenant.user) is True
        assert not mfa.has_factor(tenant.user)
        assert mfa.account_context(client, tenant.user)["recovery_left"] == 0
    flow = Flow(tenant)
    flow.password()
    assert flow.landed()


def test_passkey_endpoints_refuse_a_forged_answer_and_a_second_use_of_a_challenge(make_tenant):
    tenant = make_tenant(mfa_policy="optional")
    flow = Flow(tenant)
    assert "Sign in with a passkey" in flow.page.text
    rid = re.search(r'name="rid" type="hidden" value="([^"]+)"', flow.page.text).group(1)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', flow.page.text).group(1)
    headers = {"X-CSRFToken": csrf, "Referer": flow.page.url}
    http, url = flow.browser.http, tenant.url

    options = http.post(f"{url}/passkey/login/options?rid={rid}", json={}, headers=headers)
    assert options.status_code == 200
    assert options.json()["userVerification"] == "required" and options.json()["rpId"] == "127.0.0.1"
    forged = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}
    answer = http.post(f"{url}/passkey/login?rid={rid}", json={"credential": forged}, headers=headers)
    assert answer.status_code == 400 and answer.json()["error"]
    again = http.post(f"{url}/passkey/login?rid={rid}", json={"credential": forged}, headers=headers)
    assert again.status_code == 400 and "expired" in again.json()["error"]
    # Without the CSRF header the ceremony does not even start.
    assert http.post(f"{url}/passkey/login/options?rid={rid}", json={}).status_code == 400


def test_no_passkey_button_where_second_factors_are_off(make_tenant):
    tenant = make_tenant()
    assert "Sign in with a passkey" not in Flow(tenant).page.text


def test_migration_makes_an_existing_console_client_optional(tmp_path):
    """Upgrading keeps every client's sign-in as it was, except the console's own, which offers second factors."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from app.extensions import db
    from tests.helpers import make_app
    from tests.unit.test_migrations import insert_client

    app = make_app(f"sqlite:///{tmp_path / 'old.db'}")
    with app.app_context():
        upgrade(revision="0009")
        conn = db.session.connection()
        insert_client(conn, 1, "authgate-console")
        insert_client(conn, 2, "shop")
        db.session.commit()
        upgrade()
        rows = db.session.execute(sa.text("SELECT client_id, mfa_policy FROM clients ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("authgate-console", "optional"), ("shop", "off")]
        db.session.remove()
        db.engine.dispose()
