"""Brute-force protection at the password forms, over HTTP: locks, address throttles, proxies, hash slots, audit.

Most tests keep the counters on the test Redis (`@pytest.mark.redis`) and sign in through Flask's
test client, which sets the peer address of each request; the link page is reached through a live
server and the fake Google. Two `make serve` workers show that the counters are shared, and a Redis
that does not answer shows that sign-ins go on (counted in memory).
"""

import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import requests
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, BrowserSession, LinkedIdentity, User
from app.runtime import runtime
from tests.helpers import forms, redis_settings
from tests.integration.helpers import PASSWORD, REDIRECT_URI, SCOPE, authorize_params, start, text
from tests.integration.serving import flask_cli, free_port, make_serve
from tests.social_fakes import social_sign_in

HOME = "10.0.0.7"  # someone signing in from a clean address
SPRAYER = "10.0.0.66"
PROXY = "10.0.0.1"
FAILED = "Invalid username or password."
TRY_AGAIN = re.compile(r"Too many attempts\. Try again in (\d+) minutes? \(at (\d\d:\d\d) UTC\)\.")
BUSY = "The sign-in service is busy; try again in a moment."
# prompt=login: every attempt gets the sign-in form, also in a browser already signed in.
AUTHORIZE = "/oauth2/authorize?" + urlencode(authorize_params("web", prompt="login"))
# Nothing listens here: the app's Redis has gone away.
DEAD_REDIS = f"redis://127.0.0.1:{free_port()}/0"


class Attempts:
    """Password attempts through Flask's test client, each on a fresh pending request, from the address given."""

    def __init__(self, app):
        self.http = app.test_client()

    def login(self, username: str, password: str = PASSWORD, ip: str = HOME, forwarded_for: str | None = None):
        environ = {"REMOTE_ADDR": ip}
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        page = self.http.get(AUTHORIZE, environ_base=environ, headers=headers, follow_redirects=True)
        (form,) = forms(text(page))
        data = {**form.fields, "username": username, "password": password}
        return self.http.post("/login", data=data, environ_base=environ, headers=headers)

    def fail(self, username: str, **kwargs) -> None:
        response = self.login(username, "not the password", **kwargs)
        assert response.status_code == 200 and FAILED in text(response), response.status_code


def signed_in(response) -> bool:
    """The sign-in went through: the browser is sent on to finish its authorization request."""
    return response.status_code == 303 and response.headers["Location"].startswith("/oauth2/authorize")


def assert_try_again(response) -> int:
    """A 429 that says when to try again, in words and in Retry-After; return Retry-After."""
    assert response.status_code == 429, text(response)[:300]
    wait = int(response.headers["Retry-After"])
    found = TRY_AGAIN.search(text(response))
    assert found, text(response)
    minutes, at = found.groups()
    assert int(minutes) == -(-wait // 60)
    # The minute shown is when the wait is over (rounded up), whatever the clock did meanwhile.
    ends = datetime.now(UTC) + timedelta(seconds=wait)
    assert at in {(ends + timedelta(minutes=m)).strftime("%H:%M") for m in (0, 1, 2)}
    return wait


def audit_rows(*kinds: str) -> list[tuple]:
    db.session.expire_all()
    query = sa.select(AuditEvent).where(AuditEvent.kind.in_(kinds)).order_by(AuditEvent.id)
    return [(e.kind, e.username, e.ip, e.detail) for e in db.session.scalars(query)]


@pytest.fixture
def web(make_client, make_user):
    """The client `web` and its user alice."""
    make_client(client_id="web", scopes=SCOPE, redirect_uris=[REDIRECT_URI])
    return make_user("web", "alice", password=PASSWORD)


@pytest.fixture
def attempts(app, web) -> Attempts:
    return Attempts(app)


# --- locks --------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=3)
def test_a_name_locks_after_the_configured_failures_and_the_page_hides_whether_it_exists(attempts):
    for _ in range(3):
        attempts.fail("alice")
    locked = attempts.login("alice", PASSWORD)  # even the right password
    assert 55 <= assert_try_again(locked) <= 60
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BrowserSession)) == 0
    # The pending request is kept: the page leads back to the same sign-in form.
    back = re.search(r'href="(/login\?rid=[\w-]+)"', text(locked)).group(1)
    form_page = attempts.http.get(back, environ_base={"REMOTE_ADDR": HOME})
    assert form_page.status_code == 200 and 'name="password"' in text(form_page)

    for _ in range(3):
        attempts.fail("mallory")
    unknown = attempts.login("mallory", PASSWORD)
    assert_try_again(unknown)

    def without_times(response) -> str:
        return re.sub(r"rid=[\w-]+", "rid=…", TRY_AGAIN.sub("…", text(response)))

    assert without_times(locked) == without_times(unknown)
    assert "alice" not in text(locked) and "mallory" not in text(unknown)


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=2, AUTHGATE_LOCKOUT_WAIT_SECONDS=1)
def test_a_lock_ends_by_itself(attempts):
    attempts.fail("alice")
    attempts.fail("alice")
    assert assert_try_again(attempts.login("alice", PASSWORD)) == 1
    time.sleep(1.2)
    assert signed_in(attempts.login("alice", PASSWORD))


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=3)
def test_a_successful_sign_in_forgets_the_failures(attempts):
    attempts.fail("alice")
    attempts.fail("alice")
    assert signed_in(attempts.login("alice", PASSWORD))
    attempts.fail("alice")
    attempts.fail("alice")
    # Four failures in all, but never three since the last success.
    assert signed_in(attempts.login("alice", PASSWORD))


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_SIGNIN_ADDRESS_FAILURES=5)
def test_spraying_across_accounts_from_one_address_is_throttled(attempts, make_user):
    names = [f"user{n}" for n in range(5)]
    for name in names:
        make_user("web", name, password=PASSWORD)
    for name in names:  # one guess per account: no account comes near its lock
        attempts.fail(name, ip=SPRAYER)
    assert_try_again(attempts.login("alice", PASSWORD, ip=SPRAYER))
    assert signed_in(attempts.login("alice", PASSWORD, ip=HOME))
    assert audit_rows("address_throttled") == [("address_throttled", None, SPRAYER, {"window": 600})]


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_SIGNIN_ADDRESS_FAILURES=3)
def test_a_forged_forwarded_for_is_ignored_without_trusted_proxies(attempts):
    for n in range(3):
        attempts.fail(f"user{n}", ip=SPRAYER, forwarded_for=f"203.0.113.{n}")
    assert_try_again(attempts.login("alice", PASSWORD, ip=SPRAYER, forwarded_for="198.51.100.7"))
    assert {ip for _, _, ip, _ in audit_rows("login_failed")} == {SPRAYER}


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_SIGNIN_ADDRESS_FAILURES=3, AUTHGATE_TRUSTED_PROXIES=1)
def test_forwarded_for_from_a_trusted_proxy_names_the_address(attempts):
    for n in range(3):
        attempts.fail(f"user{n}", ip=PROXY, forwarded_for="203.0.113.9")
    assert_try_again(attempts.login("alice", PASSWORD, ip=PROXY, forwarded_for="203.0.113.9"))
    # Someone else behind the same proxy is not the sprayer.
    assert signed_in(attempts.login("alice", PASSWORD, ip=PROXY, forwarded_for="198.51.100.7"))
    assert {ip for _, _, ip, _ in audit_rows("login_failed")} == {"203.0.113.9"}


# --- the link page and social sign-in --------------------------------------------------------


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=3)
def test_the_link_page_locks_like_the_sign_in_page(social_tenant, fakes):
    tenant = social_tenant()
    flight = social_sign_in(tenant, "google", fakes)
    page = flight.page
    assert "Link your Google account" in page.text
    for _ in range(3):
        page = flight.browser.login(page, "alice", "not the password")
        assert page.status_code == 200 and FAILED in page.text
    locked = flight.browser.login(page, "alice", PASSWORD)
    assert locked.status_code == 429 and TRY_AGAIN.search(locked.text) and int(locked.headers["Retry-After"]) > 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LinkedIdentity)) == 0
    # Back to the same link page, which still waits for the password...
    back = re.search(r'href="([^"]+)">Back to sign-in', locked.text).group(1)
    again = flight.browser.get(back)
    assert again.status_code == 200 and "Link your Google account" in again.text
    # ...and the name is locked at the sign-in page too: one count per name and client.
    browser, login_page = start(tenant)
    assert browser.login(login_page, "alice", PASSWORD).status_code == 429


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=2)
def test_a_lock_does_not_stop_signing_in_with_google(social_tenant, fakes):
    tenant = social_tenant(google={"link_verified_email": True})
    browser, page = start(tenant)
    for _ in range(2):
        page = browser.login(page, "alice", "not the password")
    assert browser.login(page, "alice", PASSWORD).status_code == 429
    claims = social_sign_in(tenant, "google", fakes).id_token()
    assert claims["sub"] == tenant.user.sub and claims["amr"] == ["fed"]


# --- hash slots ------------------------------------------------------------------------------


@pytest.mark.settings(AUTHGATE_HASH_SLOTS=1, AUTHGATE_HASH_WAIT_SECONDS=1)
def test_no_free_hash_slot_is_a_503_after_the_wait(attempts):
    with runtime().guard.hash_slot(suspect=False):  # someone else's password is being hashed
        started = time.monotonic()
        busy = attempts.login("alice", PASSWORD)
        took = time.monotonic() - started
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert BUSY in text(busy) and "Back to sign-in" in text(busy)
    assert 1 <= took < 3, took
    assert audit_rows("login_failed") == []  # turned away before any check, so nothing failed
    assert signed_in(attempts.login("alice", PASSWORD))


@pytest.mark.settings(AUTHGATE_HASH_SLOTS=2)
def test_suspect_addresses_share_one_slot_and_a_clean_address_gets_another(attempts):
    attempts.fail("user0", ip=SPRAYER)  # the sprayer's address is now suspect
    with runtime().guard.hash_slot(suspect=True):  # one of its attempts is hashing
        busy = attempts.login("alice", PASSWORD, ip=SPRAYER)
        assert busy.status_code == 503 and BUSY in text(busy)
        assert signed_in(attempts.login("alice", PASSWORD, ip=HOME))


# --- audit -------------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=2)
def test_audit_keeps_a_typed_name_only_when_it_names_an_account(attempts):
    typed_password = "hunter2 typed into the wrong box"
    for _ in range(2):
        attempts.fail("alice")
        attempts.fail(typed_password)
    assert audit_rows("login_failed", "account_locked") == [
        ("login_failed", "alice", HOME, {"reason": "bad_password"}),
        ("login_failed", None, HOME, {"reason": "unknown_user"}),
        ("login_failed", "alice", HOME, {"reason": "bad_password"}),
        ("account_locked", "alice", HOME, {"seconds": 60}),
        ("login_failed", None, HOME, {"reason": "unknown_user"}),
        ("account_locked", None, HOME, {"seconds": 60}),
    ]
    assert "hunter2" not in str(db.session.execute(sa.select(AuditEvent.__table__)).all())
    # The account's own failures name it by id too, so the audit log finds them under the user.
    named = db.session.scalars(sa.select(AuditEvent.user_id).where(AuditEvent.username == "alice")).all()
    assert set(named) == {db.session.scalar(sa.select(User.id).where(User.username == "alice"))}


# --- several workers, and Redis going away ----------------------------------------------------------


def test_two_workers_share_the_counts(tmp_path):
    """Failures spread over both workers of `make serve`; the lock comes after exactly the configured number."""
    failures = 4
    settings = {**redis_settings(), "AUTHGATE_LOCKOUT_FAILURES": str(failures)}
    with make_serve(tmp_path, workers=2, **settings) as (base, env):
        flask_cli(env, "clients", "create", "--client-id", "web", "--name", "Web", "--redirect-uri", REDIRECT_URI)
        flask_cli(env, "users", "create", "--client", "web", "--username", "alice", "--password", PASSWORD)

        def attempt(username: str, password: str) -> requests.Response:
            # A new connection for each request: the two worker processes take turns accepting them.
            browser = requests.Session()
            browser.headers["Connection"] = "close"
            page = browser.get(base + AUTHORIZE, timeout=10)
            (form,) = forms(page.text)
            data = {**form.fields, "username": username, "password": password}
            return browser.post(f"{base}/login", data=data, allow_redirects=False, timeout=10)

        # Each worker numbers its request ids after a prefix of its own.
        for round_ in range(5):
            name = f"guess-{round_}"
            served_by = set()
            for _ in range(failures):
                failed = attempt(name, "not the password")
                assert failed.status_code == 200 and FAILED in failed.text
                served_by.add(failed.headers["X-Request-Id"][:8])
            locked = attempt(name, PASSWORD)
            assert locked.status_code == 429 and TRY_AGAIN.search(locked.text)
            if len(served_by) == 2:  # so neither worker saw all the failures itself
                break
        else:
            pytest.fail("the failures never reached both workers")


@pytest.mark.settings(AUTHGATE_REDIS_URL=DEAD_REDIS, AUTHGATE_LOCKOUT_FAILURES=3)
def test_without_redis_sign_ins_go_on_and_failures_are_counted_in_memory(app, attempts):
    assert signed_in(attempts.login("alice", PASSWORD))
    for _ in range(3):
        attempts.fail("alice")
    assert_try_again(attempts.login("alice", PASSWORD))
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["database"] == "ok" and ready.json["checks"]["redis"] != "ok"


@pytest.mark.redis
@pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=3)
def test_signing_in_by_email_forgets_the_failures_counted_against_the_username(attempts):
    for _ in range(2):
        attempts.fail("alice")
    assert signed_in(attempts.login("alice@example.com", PASSWORD))
    for _ in range(2):
        attempts.fail("alice")
    assert signed_in(attempts.login("alice", PASSWORD))
