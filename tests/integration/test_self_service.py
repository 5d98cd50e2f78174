"""Self-service over HTTP: register, verify the email by its link, forget and reset a password, with real SMTP."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa
from authlib.integrations.base_client import OAuthError

from app.extensions import db
from app.models import AuditEvent, BrowserSession, LinkToken, Role, User
from app.services import users as user_service
from tests.helpers import forms, query_of, verify_jwt
from tests.integration.helpers import PASSWORD, REDIRECT_URI, exchange, run_code_flow, start
from tests.mailbox import link_in, text_of

NEW_PASSWORD = "a brand new password"
SENT = "If an account matches, we sent a link to its email address"
INVALID = "This link is invalid or has expired. Ask for a new one."
BOB = {"username": "bob", "email": "bob@example.com", "password": "bobs long password", "first_name": "Bob",
       "last_name": "Builder"}  # fmt: skip


def login_page(tenant, browser=None):
    """Start a code flow (asking for the email claims); return (browser, login page, rid)."""
    browser, page = start(tenant, browser, scope="openid profile email roles")
    assert page.status_code == 200 and 'name="password"' in page.text
    return browser, page, forms(page.text)[0].fields["rid"]


def register(tenant, browser=None, **fields):
    """Fill the registration page reached from the login page; return (browser, response, rid)."""
    browser, page, rid = login_page(tenant, browser)
    assert f'href="/register?rid={rid}"' in page.text
    form = browser.get(f"/register?rid={rid}")
    assert form.status_code == 200
    return browser, browser.submit(form, {**BOB, **fields}), rid


def sign_in(browser, rid, username, password):
    page = browser.get(f"/login?rid={rid}")
    return browser.login(page, username, password)


def id_token_claims(tenant, landed) -> dict:
    assert landed.status_code == 302 and landed.headers["Location"].startswith(REDIRECT_URI), landed.text[:300]
    token = exchange(tenant, query_of(landed.headers["Location"])["code"])
    assert token.status_code == 200, token.text
    return verify_jwt(token.json()["id_token"], tenant.url, tenant.client_id)


def user_named(username) -> User:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.username == username))


def sessions_of(user) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(BrowserSession).where(BrowserSession.user_id == user.id)
    )


def alert(response) -> str:
    return re.search(r'class="alert[^"]*"[^>]*>(.*?)</div>', response.text, re.S).group(1)


def wait_for_outbox(app):
    from app.services.mail import outbox

    outbox().wait()


# --- the login page -------------------------------------------------------------------------------


@pytest.mark.parametrize(("allow_registration", "links"), [(True, {"forgot", "register"}), (False, {"forgot"})])
def test_login_page_links_to_what_the_client_offers(make_tenant, mailbox, allow_registration, links):
    tenant = make_tenant(allow_registration=allow_registration)
    _, page, rid = login_page(tenant)
    shown = {name for name in ("forgot", "register") if f'href="/{name}?rid={rid}"' in page.text}
    assert shown == links
    assert ("Forgot password?" in page.text) and (("Create an account" in page.text) == allow_registration)


@pytest.mark.settings(AUTHGATE_ENV="production", AUTHGATE_SMTP_URL=None)
def test_without_mail_the_login_page_offers_neither_and_the_pages_say_why(make_tenant):
    tenant = make_tenant(allow_registration=True)
    browser, page, rid = login_page(tenant)
    assert "Forgot password?" not in page.text and "Create an account" not in page.text
    closed = browser.get(f"/register?rid={rid}")
    assert closed.status_code == 403 and 'name="username"' not in closed.text
    no_reset = browser.get(f"/forgot?rid={rid}")
    assert no_reset.status_code == 403 and "cannot send email" in no_reset.text


# --- registration ---------------------------------------------------------------------------------


def test_registration_then_the_link_then_sign_in_ends_at_the_application_with_a_verified_email(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True, require_verified_email=True)
    browser, inbox, rid = register(tenant)
    assert inbox.status_code == 200 and "Check your inbox" in inbox.text and "bob@example.com" in inbox.text
    bob = user_named("bob")
    assert bob.first_name == "Bob" and not bob.email_verified and sessions_of(bob) == 0  # not signed in
    message = mailbox.wait_for("bob@example.com")
    assert "Web App" in message["Subject"] and "bob" in text_of(message)
    link = link_in(message)
    assert urlsplit(link).path.startswith("/verify/agl_") and query_of(link) == {"rid": rid}

    page = browser.get(link)
    assert page.status_code == 200 and "Verify my email address" in page.text
    done = browser.submit(page)
    assert done.status_code == 200 and "Email address verified" in done.text
    assert f'href="/login?rid={rid}"' in done.text and "Continue to Web App" in done.text
    assert user_named("bob").email_verified

    claims = id_token_claims(tenant, sign_in(browser, rid, "bob", BOB["password"]))
    assert claims["email"] == "bob@example.com" and claims["email_verified"] is True
    assert claims["sub"] == user_named("bob").sub


def test_registration_signs_in_at_once_with_the_default_roles_when_no_verified_email_is_required(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True, roles=("ROLE_ADMIN", "ROLE_MEMBER"))
    db.session.execute(sa.update(Role).where(Role.name == "ROLE_MEMBER").values(is_default=True))
    db.session.commit()
    _, landed, _ = register(tenant)
    claims = id_token_claims(tenant, landed)
    assert claims["email"] == "bob@example.com" and claims["email_verified"] is False
    assert claims["roles"] == ["ROLE_MEMBER"]
    assert "verify" in link_in(mailbox.wait_for("bob@example.com"))
    assert sessions_of(user_named("bob")) == 1


def test_a_link_opened_in_another_browser_verifies_without_a_way_back(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True, require_verified_email=True)
    register(tenant)
    other = tenant.browser()
    page = other.get(link_in(mailbox.wait_for("bob@example.com")))
    done = other.submit(page)
    assert done.status_code == 200 and "Email address verified" in done.text and "Continue to" not in done.text
    assert user_named("bob").email_verified


def test_the_way_back_is_only_to_a_live_request_of_the_same_client(make_tenant, mailbox):
    web = make_tenant(allow_registration=True, require_verified_email=True)
    shop = make_tenant(client_id="shop", roles=())
    browser, _, _ = register(web)
    link = link_in(mailbox.wait_for("bob@example.com"))
    _, _, shop_rid = login_page(shop, browser)
    done = browser.submit(browser.get(link.split("?")[0] + f"?rid={shop_rid}"))
    assert "Email address verified" in done.text and "Continue to" not in done.text


def test_get_of_a_verify_link_changes_nothing(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True, require_verified_email=True)
    register(tenant)
    link = link_in(mailbox.wait_for("bob@example.com"))
    for _ in range(3):  # a mail scanner, a preview, the person
        assert requests.get(link, timeout=5).status_code == 200
    assert not user_named("bob").email_verified
    assert db.session.scalar(sa.select(LinkToken.used_at).where(LinkToken.purpose == "verify_email")) is None


def test_a_verify_post_without_the_csrf_token_is_refused(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True, require_verified_email=True)
    browser, _, _ = register(tenant)
    page = browser.get(link_in(mailbox.wait_for("bob@example.com")))
    refused = browser.submit(page, {"csrf_token": "forged"})
    assert refused.status_code == 400 and not user_named("bob").email_verified


def test_a_used_verify_link_is_refused(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True, require_verified_email=True)
    browser, _, _ = register(tenant)
    link = link_in(mailbox.wait_for("bob@example.com"))
    browser.submit(browser.get(link))
    again = browser.get(link)
    assert again.status_code == 400 and INVALID in again.text and "Verify my email address" not in again.text


def test_resend_from_the_inbox_page_supersedes_the_first_link(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True, require_verified_email=True)
    browser, inbox, _ = register(tenant)
    first = link_in(mailbox.wait_for("bob@example.com"))
    resent = browser.submit(inbox)
    assert resent.status_code == 200 and "We sent a new link" in resent.text
    second = link_in(mailbox.wait_for("bob@example.com", count=2))
    assert first != second
    assert browser.get(first).status_code == 400
    assert browser.submit(browser.get(second)).status_code == 200 and user_named("bob").email_verified


@pytest.mark.settings(AUTHGATE_MAIL_ACCOUNT_LIMIT=2)
def test_resending_is_limited_per_account(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True, require_verified_email=True)
    browser, inbox, _ = register(tenant)  # the first message
    assert browser.submit(inbox).status_code == 200  # the second
    refused = browser.submit(inbox)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert len(mailbox.to("bob@example.com")) == 2


def test_the_inbox_page_needs_a_registration_in_this_browser(make_tenant):
    tenant = make_tenant()
    response = tenant.browser().get("/verify-email")
    assert response.status_code == 400 and "Start from your application" in response.text


def test_when_the_mail_server_fails_the_account_stays_and_the_page_offers_to_send_again(app, make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True, require_verified_email=True)
    app.config["AUTHGATE_SMTP_URL"] = "smtp://127.0.0.1:9"  # nobody listens there
    browser, page, _ = register(tenant)
    assert page.status_code == 200 and "The email could not be sent. Try again in a few minutes." in page.text
    assert user_named("bob") is not None
    app.config["AUTHGATE_SMTP_URL"] = mailbox.url
    again = browser.submit(page)
    assert "We sent a new link" in again.text and mailbox.wait_for("bob@example.com")


def test_when_mail_fails_without_a_required_verification_the_user_is_signed_in_and_told(app, make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True)
    app.config["AUTHGATE_SMTP_URL"] = "smtp://127.0.0.1:9"
    _, page, _ = register(tenant)
    assert "The email could not be sent" in page.text and "Continue to Web App" in page.text
    assert sessions_of(user_named("bob")) == 1


def test_closed_registration_is_refused_without_a_form(make_tenant, mailbox):
    tenant = make_tenant()
    browser, _, rid = login_page(tenant)
    for response in (
        browser.get(f"/register?rid={rid}"),
        browser.http.post(f"{tenant.url}/register", data={"rid": rid, **BOB}),
    ):
        assert response.status_code in (400, 403)
    closed = browser.get(f"/register?rid={rid}")
    assert (
        closed.status_code == 403 and "Registration is closed" in closed.text and 'name="username"' not in closed.text
    )
    assert user_named("bob") is None


def test_registration_needs_a_pending_request(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True)
    response = tenant.browser().get("/register")
    assert response.status_code == 400 and "Start from your application" in response.text


def test_every_field_error_shows_at_once(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True)
    _, page, _ = register(tenant, username="", email="not-an-address", password="short")
    errors = dict(re.findall(r'id="(\w+)-error">(.*?)</div>', page.text))
    assert errors == {
        "username": "Choose a username.",
        "email": errors["email"],
        "password": "Password must be at least 8 characters.",
    }
    assert errors["email"].startswith("Email is not a valid address")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"username": ""}, "username", "Choose a username."),
        ({"username": "no spaces"}, "username", "Username must be 1 to 64 characters"),
        ({"username": "alice"}, "username", "&#39;alice&#39; is already taken"),
        ({"username": "ALICE"}, "username", "is already taken"),
        ({"email": ""}, "email", "Enter your email address."),
        ({"email": "not-an-address"}, "email", "Email is not a valid address"),
        ({"email": "Alice@Example.com"}, "email", "is already used by another user"),
        ({"password": ""}, "password", "Choose a password."),
        ({"password": "short"}, "password", "Password must be at least 8 characters."),
        ({"username": "bobbybobby", "password": "BobbyBobby"}, "password", "Password must not be the username."),
        ({"password": "x" * 73}, "password", "Password must be at most 72 bytes."),
        ({"first_name": "x" * 101}, "first_name", "at most 100 characters"),
        ({"username": "nul\x00"}, "username", "cannot hold a NUL"),
    ],
)
def test_bad_registration_input_is_shown_next_to_the_field(make_tenant, mailbox, fields, field, message):
    tenant = make_tenant(allow_registration=True)
    _, page, _ = register(tenant, **fields)
    assert page.status_code == 200
    error = re.search(rf'id="{field}-error">(.*?)</div>', page.text, re.S)
    assert error and message in error.group(1), page.text
    assert 'aria-invalid="true"' in page.text
    kept = forms(page.text)[0].fields
    assert kept["password"] == ""  # never sent back
    if field != "email":
        assert kept["email"] == fields.get("email", BOB["email"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1  # alice only
    assert mailbox.messages == []


@pytest.mark.settings(AUTHGATE_REGISTER_ADDRESS_LIMIT=2)
def test_registrations_are_limited_per_address(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True)
    for n in range(2):
        _, landed, _ = register(tenant, username=f"user{n}", email=f"user{n}@example.com")
        assert landed.status_code == 302
    _, refused, _ = register(tenant, username="user2", email="user2@example.com")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many attempts" in refused.text and user_named("user2") is None


# --- sign-in with a required verified email ---------------------------------------------------------


def test_require_verified_email_blocks_sign_in_until_verified(make_tenant, make_user, mailbox):
    tenant = make_tenant(require_verified_email=True)
    make_user("web", "carol", password=PASSWORD, email="carol@example.com")
    browser, page, rid = login_page(tenant)
    blocked = browser.login(page, "carol", PASSWORD)
    assert blocked.status_code == 200 and "Verify your email address first" in blocked.text
    carol = user_named("carol")
    assert sessions_of(carol) == 0 and mailbox.messages == []  # only when asked
    sent = browser.submit(blocked)
    assert "We sent a new link" in sent.text or "We sent a link" in sent.text
    link = link_in(mailbox.wait_for("carol@example.com"))
    _, again, _ = login_page(tenant, browser)
    assert "Verify your email address first" in browser.login(again, "carol", PASSWORD).text  # still not
    browser.submit(browser.get(link))
    claims = id_token_claims(tenant, sign_in(browser, rid, "carol", PASSWORD))
    assert claims["email_verified"] is True


def test_a_wrong_password_says_nothing_about_the_email(make_tenant, make_user, mailbox):
    tenant = make_tenant(require_verified_email=True)
    make_user("web", "carol", password=PASSWORD, email="carol@example.com")
    browser, page, _ = login_page(tenant)
    response = browser.login(page, "carol", "not the password")
    assert "Invalid username or password." in response.text and "verify" not in response.text.lower()


def test_a_user_without_an_email_is_told_to_ask_the_administrators(make_tenant, make_user, mailbox):
    tenant = make_tenant(require_verified_email=True)
    make_user("web", "dave", password=PASSWORD, email=None)
    browser, page, _ = login_page(tenant)
    blocked = browser.login(page, "dave", PASSWORD)
    assert "has none" in blocked.text and not forms(blocked.text)


# --- forgotten password ---------------------------------------------------------------------------


def forgot(tenant, login, browser=None):
    browser, page, rid = login_page(tenant, browser)
    assert f'href="/forgot?rid={rid}"' in page.text
    form = browser.get(f"/forgot?rid={rid}")
    assert form.status_code == 200 and 'name="login"' in form.text
    return browser, browser.submit(form, {"login": login}), rid


def test_forgot_then_the_link_then_the_new_password_works_and_the_old_one_and_refresh_tokens_do_not(
    make_tenant, mailbox
):
    tenant = make_tenant()
    session = tenant.session()
    old_token, _ = run_code_flow(tenant, session)
    browser, sent, rid = forgot(tenant, "alice@example.com")
    assert sent.status_code == 200 and SENT in sent.text
    message = mailbox.wait_for("alice@example.com")
    assert message["Subject"] == "Reset your password for Web App"
    link = link_in(message)
    assert urlsplit(link).path.startswith("/reset/agl_") and query_of(link) == {"rid": rid}

    form = browser.get(link)
    assert form.status_code == 200 and {"password", "password_confirm"} <= set(forms(form.text)[0].fields)
    done = browser.submit(form, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert done.status_code == 200 and "Password changed" in done.text and f'href="/login?rid={rid}"' in done.text

    assert "Invalid username or password." in sign_in(browser, rid, "alice", PASSWORD).text
    assert id_token_claims(tenant, sign_in(browser, rid, "alice", NEW_PASSWORD))["sub"]
    with pytest.raises(OAuthError) as refused:
        session.refresh_token(f"{tenant.url}/oauth2/token", refresh_token=old_token["refresh_token"])
    assert refused.value.error == "invalid_grant"
    assert browser.get(link).status_code == 400  # used


def test_an_unknown_account_gets_the_same_page_and_no_mail(app, make_tenant, mailbox):
    tenant = make_tenant()
    _, known, _ = forgot(tenant, "alice")
    _, unknown, _ = forgot(tenant, "nobody@example.com")
    assert unknown.status_code == known.status_code == 200
    assert alert(unknown) == alert(known) and SENT in alert(unknown)
    mailbox.wait_for("alice@example.com")
    wait_for_outbox(app)
    assert [str(m["To"]) for m in mailbox.messages] == ["alice@example.com"]


def test_a_short_new_password_is_named_even_when_the_repetition_differs(make_tenant, mailbox):
    tenant = make_tenant()
    browser, _, _ = forgot(tenant, "alice")
    link = link_in(mailbox.wait_for("alice@example.com"))
    page = browser.submit(browser.get(link), {"password": "short", "password_confirm": "other"})
    errors = dict(re.findall(r'id="(\w+)-error">(.*?)</div>', page.text))
    assert errors == {
        "password": "New password must be at least 8 characters.",
        "password_confirm": "The two passwords differ.",
    }


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"password": "", "password_confirm": ""}, "password", "Choose a new password."),
        ({"password": "short", "password_confirm": "short"}, "password", "New password must be at least 8 characters."),
        ({"password": "Alice", "password_confirm": "Alice"}, "password", "at least 8 characters"),
        (
            {"password": NEW_PASSWORD, "password_confirm": "something else"},
            "password_confirm",
            "The two passwords differ.",
        ),
        ({"password": "y" * 73, "password_confirm": "y" * 73}, "password", "must be at most 72 bytes"),
    ],
)
def test_bad_new_passwords_are_shown_next_to_the_field_and_keep_the_link(make_tenant, mailbox, fields, field, message):
    tenant = make_tenant()
    browser, _, _ = forgot(tenant, "alice")
    link = link_in(mailbox.wait_for("alice@example.com"))
    page = browser.submit(browser.get(link), fields)
    assert page.status_code == 200
    error = re.search(rf'id="{field}-error">(.*?)</div>', page.text, re.S)
    assert error and message in error.group(1), page.text
    assert browser.get(link).status_code == 200  # still live
    assert forms(page.text)[0].fields["password"] == ""


def test_an_expired_reset_link_is_refused(make_tenant, mailbox):
    tenant = make_tenant()
    browser, _, _ = forgot(tenant, "alice")
    link = link_in(mailbox.wait_for("alice@example.com"))
    form = browser.get(link)
    db.session.execute(sa.update(LinkToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    for response in (
        browser.get(link),
        browser.submit(form, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}),
    ):
        assert response.status_code == 400 and INVALID in response.text
        assert "Ask for a new link" in response.text  # the rid is live in this browser
    assert (
        "Invalid username or password."
        in sign_in(browser, forms(form.text)[0].fields["rid"], "alice", NEW_PASSWORD).text
    )


def test_a_second_request_supersedes_the_first_link(make_tenant, mailbox):
    tenant = make_tenant()
    browser, _, _ = forgot(tenant, "alice")
    first = link_in(mailbox.wait_for("alice@example.com"))
    forgot(tenant, "alice", browser)
    second = link_in(mailbox.wait_for("alice@example.com", count=2))
    assert browser.get(first).status_code == 400
    done = browser.submit(browser.get(second), {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert "Password changed" in done.text


def test_a_reused_reset_link_is_refused_even_in_another_browser(make_tenant, mailbox):
    tenant = make_tenant()
    browser, _, _ = forgot(tenant, "alice")
    link = link_in(mailbox.wait_for("alice@example.com"))
    other = tenant.browser()
    form_here, form_there = browser.get(link), other.get(link)
    browser.submit(form_here, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    late = other.submit(form_there, {"password": "a third password!", "password_confirm": "a third password!"})
    assert late.status_code == 400 and INVALID in late.text and "Ask for a new link" not in late.text


@pytest.mark.parametrize("token", ["agl_unknown", "not-a-link", "agl_" + "x" * 200])
def test_a_made_up_link_gets_the_one_message(make_tenant, token):
    tenant = make_tenant()
    for path in (f"/verify/{token}", f"/reset/{token}"):
        response = tenant.browser().get(path)
        assert response.status_code == 400 and INVALID in response.text


@pytest.mark.settings(AUTHGATE_FORGOT_ADDRESS_LIMIT=2)
def test_reset_requests_are_limited_per_address(make_tenant, mailbox):
    tenant = make_tenant()
    for login in ("alice", "nobody"):
        assert forgot(tenant, login)[1].status_code == 200
    _, refused, _ = forgot(tenant, "alice")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_forgot_needs_a_pending_request(make_tenant, mailbox):
    tenant = make_tenant()
    response = tenant.browser().get("/forgot")
    assert response.status_code == 400 and "Start from your application" in response.text


# --- headers --------------------------------------------------------------------------------------


def test_the_pages_are_neither_cached_nor_leak_their_links_as_referrers(make_tenant, mailbox):
    tenant = make_tenant(allow_registration=True)
    browser, _, rid = forgot(tenant, "alice")
    link = link_in(mailbox.wait_for("alice@example.com"))
    verify = tenant.browser().get("/verify/agl_unknown")
    for response in (browser.get(f"/register?rid={rid}"), browser.get(f"/forgot?rid={rid}"), browser.get(link), verify):
        assert response.headers["Referrer-Policy"] == "no-referrer", response.url
        assert response.headers["Cache-Control"] == "no-store", response.url


def test_a_social_sign_in_is_blocked_too_until_the_email_is_verified(social_tenant, fakes, mailbox):
    from tests.social_fakes import social_sign_in

    tenant = social_tenant(google={"link_verified_email": True}, github=None, require_verified_email=True)
    assert social_sign_in(tenant, "google", fakes).landed_at_client  # links to alice, whose email is verified
    user_service.update_user("web", "alice", email_verified=False)
    blocked = social_sign_in(tenant, "google", fakes).page
    assert blocked.status_code == 200 and "Verify your email address first" in blocked.text
    assert sessions_of(user_named("alice")) == 1  # the first sign-in's only
    event = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (event.kind, event.detail["reason"], event.detail["idp"]) == ("login_failed", "email_not_verified", "google")
