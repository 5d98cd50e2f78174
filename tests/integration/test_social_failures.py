"""Every way a social sign-in can fail ends on a page that says why, with nothing signed in or created."""

import logging
import socket
import time
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, BrowserSession, LinkedIdentity, User
from app.services import idps
from app.services import users as user_service
from app.services.clients import get_client
from tests.helpers import query_of
from tests.social_fakes import UPSTREAM_CLIENT_ID, UPSTREAM_SECRET, button_href, social_sign_in, start_sign_in


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def last_failure() -> AuditEvent:
    db.session.expire_all()
    query = sa.select(AuditEvent).where(AuditEvent.kind == "login_failed").order_by(AuditEvent.id.desc())
    return db.session.scalars(query).first()


def assert_nothing_happened(users_before: int = 1) -> None:
    assert count(BrowserSession) == 0
    assert count(LinkedIdentity) == 0
    assert count(User) == users_before


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def tenant(social_tenant):
    return social_tenant()


@pytest.mark.parametrize("slug", ["google", "github"])
def test_upstream_denied(tenant, fakes, slug):
    for fake in fakes:
        fake.deny = True
    page = social_sign_in(tenant, slug, fakes).page
    assert page.status_code == 403
    assert "Sign-in cancelled" in page.text and "cancelled or refused" in page.text
    assert "Back to sign-in" in page.text  # the pending request is still there to go back to
    assert "Traceback" not in page.text
    assert_nothing_happened()
    event = last_failure()
    assert event.detail == {"method": "fed", "idp": slug, "reason": "access_denied"}


def test_an_upstream_error_other_than_denied(tenant, fakes):
    flight = start_sign_in(tenant)
    upstream = flight.browser.get(button_href(flight.page, "google"))
    state = query_of(upstream.headers["Location"])["state"]
    page = flight.browser.get(f"/login/google/callback?error=server_error&state={state}")
    assert page.status_code == 502 and "Google reported an error" in page.text
    assert last_failure().detail["reason"] == "upstream_error"


def _callback_of(flight, slug):
    """Go to the provider and return its redirect back (not yet followed)."""
    upstream = flight.browser.get(button_href(flight.page, slug))
    return flight.browser.http.get(upstream.headers["Location"], allow_redirects=False).headers["Location"]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda params: {**params, "state": "forged-state"}, id="forged-state"),
        pytest.param(lambda params: {k: v for k, v in params.items() if k != "state"}, id="no-state"),
    ],
)
def test_state_mismatch(tenant, fake_google, tamper):
    flight = start_sign_in(tenant)
    back = _callback_of(flight, "google")
    params = tamper(query_of(back))
    page = flight.browser.get(back.split("?")[0] + "?" + urlencode(params))
    assert page.status_code == 400
    assert "could not be verified" in page.text
    assert_nothing_happened()
    assert last_failure().detail == {"method": "fed", "idp": "google", "reason": "state_mismatch"}
    # Nothing reached the token endpoint.
    assert fake_google.requests_to("/token") == []


def test_a_callback_in_another_browser_is_a_state_mismatch(tenant, fake_google):
    """Login CSRF: an attacker's callback URL opened in the victim's browser signs nobody in."""
    attacker = start_sign_in(tenant)
    back = _callback_of(attacker, "google")
    victim = start_sign_in(tenant)
    page = victim.browser.get(back)
    assert page.status_code == 400 and "could not be verified" in page.text
    assert_nothing_happened()


def test_a_state_is_good_for_one_callback_and_one_provider(tenant, fakes, fake_google):
    flight = start_sign_in(tenant)
    back = _callback_of(flight, "google")
    # The state of a Google sign-in does not count at GitHub's callback.
    wrong = flight.browser.get(back.replace("/login/google/", "/login/github/"))
    assert wrong.status_code == 400
    flight2 = start_sign_in(tenant, browser=flight.browser)
    back = _callback_of(flight2, "google")
    first = flight2.browser.get(back)
    assert first.status_code == 200 and "Link your Google account" in first.text
    again = flight2.browser.get(back)
    assert again.status_code == 400 and "could not be verified" in again.text


@pytest.mark.parametrize(
    ("slug", "setup"),
    [
        pytest.param("google", lambda g, h: g.account.update(email_verified=False), id="google-unverified"),
        pytest.param("google", lambda g, h: g.account.update(email_verified="false"), id="google-string-false"),
        pytest.param(
            "google", lambda g, h: (g.account.pop("email"), g.account.pop("email_verified")), id="google-none"
        ),
        pytest.param("github", lambda g, h: h.emails[1].update(verified=False), id="github-primary-unverified"),
        pytest.param("github", lambda g, h: h.emails[1].update(primary=False), id="github-no-primary"),
        pytest.param("github", lambda g, h: h.emails.clear(), id="github-no-emails"),
    ],
)
def test_unverified_email(tenant, fakes, fake_google, fake_github, slug, setup):
    setup(fake_google, fake_github)
    page = social_sign_in(tenant, slug, fakes).page
    assert page.status_code == 403
    assert "no verified email address" in page.text
    assert_nothing_happened()
    assert last_failure().detail["reason"] == "unverified_email"


def test_github_primary_verified_email_is_the_one_used(social_tenant, fakes, fake_github):
    """A verified secondary address does not count; only the primary one does."""
    tenant = social_tenant()
    fake_github.emails = [
        {"email": "alice@example.com", "primary": False, "verified": True},
        {"email": "new@example.com", "primary": True, "verified": True},
    ]
    social_sign_in(tenant, "github", fakes).exchange()
    created = db.session.scalar(sa.select(User).where(User.username == "alice-gh"))
    assert created.email == "new@example.com"


def test_provider_disabled_before_the_click(tenant, fakes):
    flight = start_sign_in(tenant)
    idps.set_enabled("web", "google", False)
    page = flight.browser.get(button_href(flight.page, "google"))
    assert page.status_code == 403 and "switched off" in page.text
    assert last_failure().detail["reason"] == "provider_disabled"


def test_provider_disabled_while_at_the_upstream(tenant, fakes, fake_github):
    flight = start_sign_in(tenant)
    back = _callback_of(flight, "github")
    idps.set_enabled("web", "github", False)
    page = flight.browser.get(back)
    assert page.status_code == 403 and "Signing in with GitHub is switched off" in page.text
    assert fake_github.requests_to("/login/oauth/access_token") == []
    assert_nothing_happened()


def test_unknown_provider_slug(tenant):
    flight = start_sign_in(tenant)
    href = button_href(flight.page, "google").replace("/login/google", "/login/corp")
    page = flight.browser.get(href)
    assert page.status_code == 404 and "does not exist" in page.text


def test_starting_without_a_pending_request(tenant):
    page = tenant.browser().get("/login/google?rid=nothing-here")
    assert page.status_code == 400 and "Start from your application" in page.text


@pytest.mark.parametrize("slug", ["google", "github"])
def test_user_disabled(social_tenant, fakes, slug):
    tenant = social_tenant(google={"link_verified_email": True}, github={"link_verified_email": True})
    social_sign_in(tenant, slug, fakes).exchange()  # links alice
    user_service.set_enabled("web", "alice", False)
    page = social_sign_in(tenant, slug, fakes).page
    assert page.status_code == 403 and "This account is disabled" in page.text
    assert last_failure().detail["reason"] == "user_disabled"
    assert count(BrowserSession) == 1  # only the first sign-in's


def test_disabled_user_is_not_auto_linked(social_tenant, fakes):
    tenant = social_tenant(google={"link_verified_email": True})
    user_service.set_enabled("web", "alice", False)
    page = social_sign_in(tenant, "google", fakes).page
    assert page.status_code == 403 and "disabled" in page.text
    assert_nothing_happened()


def test_google_unreachable(social_tenant, fakes, fake_google):
    tenant = social_tenant()
    idps.update_provider("web", "google", issuer=closed_port_url())
    flight = start_sign_in(tenant)
    page = flight.browser.get(button_href(flight.page, "google"))
    assert page.status_code == 502
    assert "Google is not answering" in page.text and "could not be reached" in page.text
    assert last_failure().detail["reason"] == "unreachable"


def test_github_api_unreachable(social_tenant, fakes):
    tenant = social_tenant()
    idps.update_provider("web", "github", api_url=closed_port_url() + "/api/v3")
    page = social_sign_in(tenant, "github", fakes).page
    assert page.status_code == 502 and "GitHub is not answering" in page.text
    assert_nothing_happened()


@pytest.mark.parametrize("slug", ["google", "github"])
def test_upstream_too_slow(app, tenant, fakes, slug):
    app.config["AUTHGATE_UPSTREAM_TIMEOUT"] = 0.5
    for fake in fakes:
        fake.delay = 1.5
    started = time.monotonic()
    page = social_sign_in(tenant, slug, fakes).page
    assert time.monotonic() - started < 1.4
    assert page.status_code == 502 and "did not answer in time" in page.text
    assert last_failure().detail["reason"] == "timeout"
    assert_nothing_happened()


def test_wrong_upstream_secret_is_a_token_error(social_tenant, fakes):
    tenant = social_tenant()
    idps.update_provider("web", "google", client_secret="not-the-secret")
    page = social_sign_in(tenant, "google", fakes).page
    assert page.status_code == 502 and "Google refused the sign-in" in page.text
    assert last_failure().detail["reason"] == "token_error"


@pytest.mark.parametrize(
    ("claims", "forge", "reason"),
    [
        ({"nonce": "another-nonce"}, False, "wrong_nonce"),
        ({"nonce": None}, False, "wrong_nonce"),
        ({"iss": "https://evil.example.com"}, False, "wrong_issuer"),
        ({"aud": "someone-else"}, False, "wrong_audience"),
        ({"aud": [UPSTREAM_CLIENT_ID, "someone-else"]}, False, "wrong_audience"),  # several audiences, no azp
        ({"exp": int(time.time()) - 3600}, False, "expired"),
        ({"iat": int(time.time()) + 3600}, False, "expired"),
        ({}, True, "invalid_id_token"),
    ],
    ids=["nonce", "no-nonce", "iss", "aud", "aud-list-no-azp", "exp", "iat-future", "signature"],
)
def test_bad_id_token(tenant, fakes, fake_google, claims, forge, reason):
    fake_google.id_token_claims = claims
    fake_google.forge_signature = forge
    page = social_sign_in(tenant, "google", fakes).page
    assert page.status_code == 502
    assert "Signing in with Google failed" in page.text
    assert_nothing_happened()
    assert last_failure().detail == {"method": "fed", "idp": "google", "reason": reason}


def test_several_audiences_with_azp_are_accepted(social_tenant, fakes, fake_google):
    tenant = social_tenant()
    user_service.update_user("web", "alice", email="alice.local@example.com")
    fake_google.id_token_claims = {"aud": [UPSTREAM_CLIENT_ID, "other"], "azp": UPSTREAM_CLIENT_ID}
    assert social_sign_in(tenant, "google", fakes).id_token()["idp"] == "google"


def test_email_from_userinfo_when_the_id_token_has_none(social_tenant, fakes, fake_google):
    tenant = social_tenant()
    user_service.update_user("web", "alice", email="alice.local@example.com")
    fake_google.email_in_userinfo_only = True
    claims = social_sign_in(tenant, "google", fakes).id_token()
    assert claims["email"] == "alice@example.com" and claims["email_verified"] is True
    assert fake_google.requests_to("/userinfo")


def test_nothing_secret_is_logged(social_tenant, fakes, fake_google, caplog):
    tenant = social_tenant()
    user_service.update_user("web", "alice", email="alice.local@example.com")
    with caplog.at_level(logging.DEBUG, logger="authgate"):
        flight = social_sign_in(tenant, "google", fakes)
        flight.exchange()
        fake_google.deny = True
        social_sign_in(tenant, "google", fakes)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("authgate"))
    assert "login_succeeded" in logged and "login_failed" in logged
    (authorize, _) = fake_google.requests_to("/authorize")
    (token_request,) = fake_google.requests_to("/token")
    for secret in (UPSTREAM_SECRET, authorize["state"], authorize["nonce"], token_request["code"],
                   token_request["code_verifier"], *fake_google.tokens):  # fmt: skip
        assert secret not in logged
    stored = str([(e.kind, e.detail) for e in db.session.scalars(sa.select(AuditEvent))])
    assert UPSTREAM_SECRET not in stored and token_request["code"] not in stored


def test_upstream_client_secret_is_encrypted_at_rest(tenant):
    provider = idps.get_provider(get_client("web"), "google")
    assert UPSTREAM_SECRET not in provider.client_secret_encrypted
    assert idps.client_secret_of(provider) == UPSTREAM_SECRET
