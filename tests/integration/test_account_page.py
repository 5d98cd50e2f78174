"""The end user's own account page, /account/<client_id>: sign-in first, then profile, email,
password, linked accounts and sessions, each only ever the signed-in user's own."""

import re

import pytest
import sqlalchemy as sa
from authlib.integrations.base_client import OAuthError
from flask import g

from app.auth import browser as browser_state
from app.extensions import db
from app.models import AuditEvent, BrowserSession, LinkedIdentity, User
from app.services import identities, idps, selfservice, sessions, transaction
from app.services import users as user_service
from app.services.clients import get_client
from tests.helpers import forms
from tests.integration.helpers import PASSWORD, run_code_flow, text
from tests.integration.serving import free_port
from tests.mailbox import link_in, text_of
from tests.social_fakes import button_href, through_upstream

NEW_PASSWORD = "a new and longer password"


@pytest.fixture(autouse=True)
def fresh_g(app):
    """Each request starts with an empty `g`, as on a real server (see `set_up_console`)."""

    @app.before_request
    def forget():
        for name in list(vars(g)):
            delattr(g, name)


@pytest.fixture
def web(app, make_client, make_user):
    """A client with a user alice (password, verified email) and a second user bob."""
    make_client(client_id="web", name="Web Shop", grant_types=["authorization_code", "refresh_token"])
    make_user("web", "alice", password=PASSWORD, first_name="Alice", last_name="Liddell", email_verified=True)
    make_user("web", "bob", password=PASSWORD)
    return get_client("web")


def open_account(http, client_id="web", username="alice", password=PASSWORD):
    """Open the account page signed out, sign in on the hosted login page, and land back on it."""
    asked = http.get(f"/account/{client_id}")
    assert asked.status_code == 302 and re.match(r"^/login\?rid=[\w-]+$", asked.headers["Location"]), asked.headers
    login = http.get(asked.headers["Location"])
    assert login.status_code == 200 and "Sign in" in text(login)
    (form,) = forms(text(login))
    landed = http.post("/login", data={**form.fields, "username": username, "password": password})
    assert landed.status_code == 303 and landed.headers["Location"] == f"/account/{client_id}"
    page = http.get(landed.headers["Location"])
    assert page.status_code == 200 and "Your account" in text(page)
    return page


def submit(http, page, action: str, **data):
    """Post the page's form whose action ends with `action`, with its hidden fields and `data`."""
    (form,) = [f for f in forms(text(page)) if f.action.endswith(action)]
    return http.post(form.action, data={**form.fields, **data})


def after(http, response, status=303):
    """Follow the 303 back to the account page."""
    assert response.status_code == status, text(response)[:500]
    page = http.get(response.headers["Location"])
    assert page.status_code == 200
    return page


def user(username="alice") -> User:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.username == username))


def live_ids(username="alice") -> set[str]:
    db.session.expire_all()
    return {s.id for s in sessions.live_sessions(user(username))}


def kinds() -> list[str]:
    return [e.kind for e in db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]


# --- signing in --------------------------------------------------------------------------------


def test_signed_out_the_page_asks_to_sign_in_and_comes_back_after(app, web):
    http = app.test_client()
    page = open_account(http)
    body = text(page)
    assert "Web Shop" in body and "alice" in body
    assert 'value="Alice"' in body and 'value="Liddell"' in body
    assert "This browser" in body and 'href="/logout"' in body
    # Signed in now: straight to the page.
    assert http.get("/account/web").status_code == 200


def test_a_social_sign_in_comes_back_to_the_page_too(social_tenant, fakes):
    tenant = social_tenant(google={"link_verified_email": True})
    visitor = tenant.browser()
    login = visitor.get("/account/web")
    assert login.status_code == 200 and "Continue with Google" in login.text
    page = through_upstream(visitor, visitor.get(button_href(login, "google")), fakes)
    assert page.status_code == 200 and page.url == f"{tenant.url}/account/web"
    assert "Your account" in page.text and "Google" in page.text


@pytest.mark.parametrize(
    "path",
    ["https://evil.example/account/web", "//evil.example/account/web", "/account/\\evil.example", "/admin/",
     "/account//evil.example", "/account/web\r\nLocation: x", "account/web", "/account/../admin/",
     "/account/%2E%2e/admin/"],
)  # fmt: skip
def test_a_sign_in_returns_only_to_an_account_page(app, path):
    assert browser_state.safe_next(path) is None
    with pytest.raises(ValueError, match="not a path a sign-in may return to"):
        browser_state.add_pending("", "web", next_path=path)


def test_unknown_and_machine_clients_have_no_account_page(app, web, make_client):
    make_client(client_id="robot", grant_types=["client_credentials"], redirect_uris=[])
    http = app.test_client()
    for client_id in ("nobody", "robot", "x" * 300):
        page = http.get(f"/account/{client_id}")
        assert page.status_code == 404 and "There is no account page at this address." in text(page)


def test_the_consoles_own_client_has_an_account_page(app, runner, client):
    from tests.integration.helpers import ADMIN_PASSWORD, set_up_console

    set_up_console(app, runner)
    page = open_account(app.test_client(), "authgate-console", "admin", ADMIN_PASSWORD)
    assert "AuthGate console" in text(page)


def test_a_sign_in_to_one_client_is_no_sign_in_to_another(app, web, make_client, make_user):
    make_client(client_id="other", name="Other", grant_types=["authorization_code"])
    make_user("other", "alice", password=PASSWORD)
    http = app.test_client()
    open_account(http)
    elsewhere = http.get("/account/other")
    assert elsewhere.status_code == 302 and elsewhere.headers["Location"].startswith("/login?rid=")


# --- profile -----------------------------------------------------------------------------------


def test_edit_names(app, web):
    http = app.test_client()
    page = after(http, submit(http, open_account(http), "/profile", first_name=" Alicia ", last_name="Smith"))
    assert "Your name was saved." in text(page)
    assert 'value="Alicia"' in text(page) and 'value="Smith"' in text(page)
    assert (user().first_name, user().last_name) == ("Alicia", "Smith")
    assert kinds()[-1] == "user_updated"

    refused = submit(http, page, "/profile", first_name="A" * 101, last_name="Smith")
    assert (
        refused.status_code == 422 and "First name" in text(refused) and "Use at most 100 characters." in text(refused)
    )
    assert user().first_name == "Alicia"


# --- email -------------------------------------------------------------------------------------


def test_change_email_by_the_link_sent_to_the_new_address(app, web, mailbox):
    http = app.test_client()
    sent = submit(http, open_account(http), "/email", email="alice.new@example.org")
    page = after(http, sent)
    assert "We sent a link to alice.new@example.org." in text(page)
    assert "Waiting for confirmation of <strong>alice.new@example.org</strong>" in text(page)
    message = mailbox.wait_for("alice.new@example.org")
    assert "Web Shop" in message["Subject"] and "replaces your current address" in text_of(message)
    assert mailbox.to("alice@example.com") == []
    # Until the link is used the old address stays, verified.
    assert (user().email, user().email_verified) == ("alice@example.com", True)

    token = link_in(message).rsplit("/", 1)[1].split("?")[0]
    selfservice.verify_email(token)  # what /verify/<token> does
    page = http.get("/account/web")
    assert (user().email, user().email_verified) == ("alice.new@example.org", True)
    assert "<strong>alice.new@example.org</strong>" in text(page) and "Verified" in text(page)
    assert "Waiting for confirmation" not in text(page)


def test_an_address_of_another_account_or_no_address_is_refused(app, web, mailbox):
    http = app.test_client()
    page = open_account(http)
    taken = submit(http, page, "/email", email="BOB@example.com")
    assert taken.status_code == 422 and "is used by another account" in text(taken)
    assert 'value="BOB@example.com"' in text(taken)  # what was typed stays
    empty = submit(http, page, "/email", email="")
    assert empty.status_code == 422 and "Enter the new address." in text(empty)
    assert mailbox.messages == []


def test_mail_that_cannot_be_sent_changes_nothing(app, web, mailbox):
    app.config["AUTHGATE_SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    http = app.test_client()
    failed = submit(http, open_account(http), "/email", email="alice.new@example.org")
    assert failed.status_code == 503
    assert "The email could not be sent. Try again in a few minutes." in text(failed)
    assert "Waiting for confirmation" not in text(failed) and "Waiting for confirmation" not in text(
        http.get("/account/web")
    )
    assert selfservice.pending_email(user()) is None and user().email == "alice@example.com"


@pytest.mark.settings(AUTHGATE_MAIL_ACCOUNT_LIMIT=1)
def test_resend_verification_of_an_unverified_address_and_its_limit(app, web, mailbox):
    user_service.update_user("web", "alice", email_verified=False)
    http = app.test_client()
    page = open_account(http)
    assert "Not verified" in text(page)
    page = after(http, submit(http, page, "/email/resend"))
    assert "We sent a new verification link to alice@example.com." in text(page)
    assert "Confirm that this address belongs to" in text_of(mailbox.wait_for("alice@example.com"))

    throttled = submit(http, page, "/email/resend")
    assert throttled.status_code == 429 and "Too many emails were sent to this account. Try again in" in text(throttled)
    assert int(throttled.headers["Retry-After"]) > 0
    assert len(mailbox.to("alice@example.com")) == 1


# --- password ----------------------------------------------------------------------------------


def test_a_wrong_current_password_is_refused_and_counted(app, web):
    http = app.test_client()
    page = open_account(http)
    wrong = submit(http, page, "/password", current_password="not it", password=NEW_PASSWORD,
                   password_confirm=NEW_PASSWORD)  # fmt: skip
    assert wrong.status_code == 422
    assert "Current password is not your current password." in text(wrong)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.kind == "login_failed"))
    assert event.username == "alice" and event.detail == {"reason": "bad_password", "page": "account"}

    differ = submit(http, page, "/password", current_password=PASSWORD, password=NEW_PASSWORD,
                    password_confirm="something else")  # fmt: skip
    assert differ.status_code == 422 and "The passwords differ." in text(differ)
    short = submit(http, page, "/password", current_password=PASSWORD, password="short", password_confirm="short")
    assert short.status_code == 422 and "New password must be at least" in text(short)
    assert user_service.password_matches(PASSWORD, user().password_hash)


@pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=3)
def test_the_current_password_is_guarded_like_a_sign_in(app, web):
    http = app.test_client()
    page = open_account(http)
    for _ in range(3):
        wrong = submit(http, page, "/password", current_password="guess", password=NEW_PASSWORD,
                       password_confirm=NEW_PASSWORD)  # fmt: skip
        assert wrong.status_code == 422
    locked = submit(http, page, "/password", current_password=PASSWORD, password=NEW_PASSWORD,
                    password_confirm=NEW_PASSWORD)  # fmt: skip
    assert locked.status_code == 429 and "Too many attempts. Try again in" in text(locked)
    assert int(locked.headers["Retry-After"]) > 0
    assert user_service.password_matches(PASSWORD, user().password_hash)
    assert "account_locked" in kinds()


def test_a_password_change_signs_out_everywhere_else_but_here(app, make_tenant):
    tenant = make_tenant(username="alice")
    rp = tenant.session()
    token, _ = run_code_flow(tenant, rp)  # another browser, with an offline refresh token
    other = app.test_client()
    open_account(other)
    http = app.test_client()
    page = open_account(http)
    assert len(live_ids()) == 3

    changed = submit(http, page, "/password", current_password=PASSWORD, password=NEW_PASSWORD,
                     password_confirm=NEW_PASSWORD)  # fmt: skip
    page = after(http, changed)
    assert "Password changed; you were signed out everywhere else." in text(page)
    (here,) = live_ids()
    assert "This browser" in text(page) and f"/sessions/{here}/end" not in text(page)
    assert other.get("/account/web").status_code == 302
    with pytest.raises(OAuthError) as refused:
        rp.refresh_token(f"{tenant.url}/oauth2/token", refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"
    assert user_service.password_matches(NEW_PASSWORD, user().password_hash)
    assert db.session.get(BrowserSession, here).amr == ["pwd"]
    assert {"user_password_set", "signed_out_everywhere"} <= set(kinds())


# --- linked accounts ---------------------------------------------------------------------------


def link(username: str, *slugs: str) -> None:
    client, person = get_client("web"), user(username)
    for slug in slugs:
        provider = idps.find_provider(client, slug) or idps.create_provider(
            "web", slug, upstream_client_id="upstream", client_secret="upstream secret",
            **({"issuer": "https://accounts.google.com"} if slug == "google" else {}),
        )  # fmt: skip
        with transaction():
            identities.add_identity(provider, person, f"{slug}-{username}", f"{username}@{slug}.example")


def linked(username="alice") -> list[str]:
    db.session.expire_all()
    return [i.provider.slug for i in identities.list_identities(user(username))]


def test_unlink_with_a_password_left(app, web):
    link("alice", "github")
    http = app.test_client()
    page = open_account(http)
    assert "GitHub" in text(page) and "alice@github.example" in text(page)
    page = after(http, submit(http, page, "/linked/github/unlink"))
    assert "Your GitHub account is no longer linked." in text(page)
    assert linked() == [] and kinds()[-1] == "identity_unlinked"


def test_the_last_way_to_sign_in_cannot_be_unlinked(app, web):
    link("alice", "github", "google")
    user_service.set_password("web", "alice", None)
    http = app.test_client()
    page = open_social_only(http)
    assert "You sign in with GitHub or Google; no password is set." in text(page)
    assert "/password" not in {f.action.rsplit("/", 1)[-1] for f in forms(text(page))}

    page = after(http, submit(http, page, "/linked/github/unlink"))
    assert linked() == ["google"]
    refused = submit(http, page, "/linked/google/unlink")
    assert refused.status_code == 409
    assert "Google is your only way to sign in to Web Shop, so it stays linked." in text(refused)
    assert linked() == ["google"]


def open_social_only(http):
    """Sign this browser in again as alice, as a social sign-in would (she has no password)."""
    client = get_client("web")
    fresh = sessions.start(client, user(), amr=["fed"], idp="google")
    with http.session_transaction() as cookie:
        cookie[browser_state.LOGINS] = {"web": fresh.id}
    return http.get("/account/web")


def test_another_users_link_or_an_unknown_one_is_not_found(app, web):
    link("bob", "github")
    http = app.test_client()
    page = open_account(http)
    for slug in ("github", "nope"):
        response = http.post(
            f"/account/web/linked/{slug}/unlink", data={"csrf_token": forms(text(page))[0].fields["csrf_token"]}
        )
        assert response.status_code == 404
    assert linked("bob") == ["github"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LinkedIdentity)) == 1


# --- sessions ----------------------------------------------------------------------------------


def test_sessions_are_listed_and_one_can_be_signed_out(app, web):
    client = get_client("web")
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    elsewhere = sessions.start(client, user(), amr=["pwd"], ip="203.0.113.9", user_agent=firefox)
    http = app.test_client()
    page = open_account(http)
    assert "Firefox on Windows" in text(page) and "IP 203.0.113.9" in text(page)
    page = after(http, submit(http, page, f"/sessions/{elsewhere.id}/end"))
    assert "That session was signed out." in text(page)
    assert elsewhere.id not in live_ids() and len(live_ids()) == 1
    assert "Firefox on Windows" not in text(page)


def test_sign_out_of_all_other_sessions(app, web):
    client = get_client("web")
    for _ in range(2):
        sessions.start(client, user(), amr=["pwd"])
    bobs = sessions.start(client, user("bob"), amr=["pwd"])
    http = app.test_client()
    page = open_account(http)
    assert len(live_ids()) == 3
    page = after(http, submit(http, page, "/sessions/end-others"))
    assert "Signed out of 2 other sessions." in text(page)
    assert len(live_ids()) == 1 and http.get("/account/web").status_code == 200
    assert live_ids("bob") == {bobs.id}


def test_another_users_session_cannot_be_ended(app, web):
    bobs = sessions.start(get_client("web"), user("bob"), amr=["pwd"])
    http = app.test_client()
    page = open_account(http)
    token = forms(text(page))[0].fields["csrf_token"]
    for session_id in (bobs.id, "no-such-session"):
        response = http.post(f"/account/web/sessions/{session_id}/end", data={"csrf_token": token})
        assert response.status_code == 404
    assert live_ids("bob") == {bobs.id}


def test_every_form_needs_its_csrf_token(app, web):
    http = app.test_client()
    open_account(http)
    before = user()
    response = http.post("/account/web/profile", data={"first_name": "Mallory", "last_name": "X"})
    assert response.status_code == 400
    assert user().first_name == before.first_name == "Alice"


def test_a_post_after_the_sign_in_ended_goes_to_sign_in_and_changes_nothing(app, web):
    http = app.test_client()
    page = open_account(http)
    sessions.sign_out_everywhere("web", "alice")
    response = submit(http, page, "/profile", first_name="Mallory", last_name="X")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login?rid=")
    assert user().first_name == "Alice"


# --- changes that could take an account over need a recent sign-in -----------------------------

RECENT = 60


def age_sign_ins(seconds: int) -> None:
    """Make every sign-in `seconds` older."""
    db.session.execute(sa.update(BrowserSession).values(auth_time=BrowserSession.auth_time - seconds))
    db.session.commit()


@pytest.mark.settings(AUTHGATE_RECENT_SIGN_IN_SECONDS=RECENT)
def test_an_old_sign_in_signs_in_again_before_a_new_email_and_comes_back(app, web, mailbox):
    http = app.test_client()
    page = open_account(http)
    age_sign_ins(RECENT + 5)
    asked = submit(http, page, "/email", email="thief@example.com")
    assert asked.status_code == 303 and asked.headers["Location"].startswith("/login?rid=")
    login = http.get(asked.headers["Location"])
    assert "For your security, sign in again to change your email address." in text(login)
    assert 'value="alice"' in text(login)  # the name is filled in
    assert mailbox.to("thief@example.com") == [] and selfservice.pending_email(user()) is None

    (form,) = forms(text(login))
    back = http.post("/login", data={**form.fields, "password": PASSWORD})
    assert back.status_code == 303 and back.headers["Location"] == "/account/web"
    sent = submit(http, http.get("/account/web"), "/email", email="alice.new@example.org")
    assert "We sent a link to alice.new@example.org." in text(after(http, sent))


@pytest.mark.settings(AUTHGATE_RECENT_SIGN_IN_SECONDS=RECENT)
def test_an_old_sign_in_cannot_unlink_or_set_up_a_second_factor(app, web):
    http = app.test_client()
    link("alice", "github")
    get_client("web").mfa_policy = "optional"
    db.session.commit()
    page = open_account(http)
    age_sign_ins(RECENT + 5)
    unlink = submit(http, page, "/linked/github/unlink")
    assert unlink.status_code == 303 and unlink.headers["Location"].startswith("/login?rid=")
    assert linked() == ["github"]
    totp = submit(http, page, "/factors/totp")
    assert totp.status_code == 303 and totp.headers["Location"].startswith("/login?rid=")
    assert "sign in again to change your second factors" in text(http.get(totp.headers["Location"]))
    from app.models.mfa import TotpCredential

    assert db.session.scalar(sa.select(sa.func.count()).select_from(TotpCredential)) == 0
