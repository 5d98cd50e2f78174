"""Real races against a live, multi-threaded AuthGate: many requests (or commands) released at once.

The database settles every race (docs/architecture.md, "Transactions"): of parallel uses of one
refresh token or one authorization code exactly one wins and the family ends; of parallel
creations of one username exactly one row is written and every loser hears "already taken".
Each test runs on SQLite and, with AUTHGATE_TEST_DATABASE_URL, on PostgreSQL.
"""

import re
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import psycopg
import pytest
import requests
import sqlalchemy as sa

from app.extensions import db
from app.models import Client, User
from app.services.crypto import sha256_hex
from tests.helpers import Browser, query_of
from tests.integration.commands import command_env, run_together
from tests.integration.helpers import (
    ADMIN_PASSWORD,
    PASSWORD,
    REDIRECT_URI,
    SCOPE,
    VERIFIER,
    authorize_params,
    introspect,
    run_code_flow,
)

TOKEN_USES = 20
CREATIONS = 30
TIMEOUT = 60  # seconds for one HTTP request: generous, a slow CI machine must not turn a wait into a failure


def released_together(count: int, call) -> list:
    """Run `call(i)` for i in range(count), each in its own thread, all released at once by a barrier."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait(timeout=TIMEOUT)
        return call(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def outcome(response: requests.Response) -> tuple[int, str | None]:
    """(status, RFC 6749 error code); a non-JSON answer is reported with its content type."""
    if response.status_code == 200:
        return 200, None
    if response.headers.get("Content-Type", "").startswith("application/json"):
        return response.status_code, response.json().get("error")
    return response.status_code, f"not JSON: {response.headers.get('Content-Type')}"


def report(name: str, sent: int, seen: Counter) -> None:
    # The figures of one run, for the record (visible with `pytest -s`).
    print(f"\nRACE {name}: sent {sent}, seen {dict(sorted(seen.items(), key=str))}")


def token_request(tenant, data: dict) -> requests.Response:
    return requests.post(
        f"{tenant.url}/oauth2/token", data=data, auth=(tenant.client_id, tenant.secret), timeout=TIMEOUT
    )


def get_code(tenant) -> str:
    """Sign alice in through the hosted pages; return the code the browser brings back."""
    browser = tenant.browser()
    page = browser.get("/oauth2/authorize?" + urlencode(authorize_params(tenant.client_id, scope=SCOPE)))
    assert page.status_code == 200, page.text[:400]
    landed = browser.login(page, tenant.user.username, PASSWORD)
    assert landed.status_code == 302 and landed.headers["Location"].startswith(REDIRECT_URI), landed.text[:400]
    return query_of(landed.headers["Location"])["code"]


def redeem(tenant, code: str) -> requests.Response:
    return token_request(
        tenant,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": VERIFIER},
    )


def assert_family_ended(tenant, winner: dict) -> None:
    """The tokens the winning request got are dead: the race counted as a reuse."""
    assert introspect(tenant, winner["refresh_token"]) == {"active": False}
    assert introspect(tenant, winner["access_token"]) == {"active": False}
    again = token_request(tenant, {"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]})
    assert outcome(again) == (400, "invalid_grant"), again.text


def assert_one_winner(responses: list[requests.Response]) -> dict:
    seen = Counter(outcome(r) for r in responses)
    assert seen == {(200, None): 1, (400, "invalid_grant"): len(responses) - 1}, seen
    for response in responses:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Request-Id"]
    (winner,) = (r.json() for r in responses if r.status_code == 200)
    return winner


TOKEN_FORMATS = [pytest.param("jwt", id="jwt-client"), pytest.param("opaque", id="opaque-client")]


@pytest.mark.parametrize("token_format", TOKEN_FORMATS)
def test_parallel_uses_of_one_refresh_token(make_tenant, token_format):
    tenant = make_tenant(client_id=f"{token_format}-web", token_format=token_format)
    token, _ = run_code_flow(tenant, tenant.session())
    presented = token["refresh_token"]

    responses = released_together(
        TOKEN_USES, lambda _: token_request(tenant, {"grant_type": "refresh_token", "refresh_token": presented})
    )

    report(f"refresh token, {token_format} client", TOKEN_USES, Counter(outcome(r) for r in responses))
    winner = assert_one_winner(responses)
    assert winner["refresh_token"] != presented
    assert introspect(tenant, presented) == {"active": False}
    assert_family_ended(tenant, winner)


@pytest.mark.parametrize("token_format", TOKEN_FORMATS)
def test_parallel_redemptions_of_one_authorization_code(make_tenant, token_format):
    tenant = make_tenant(client_id=f"{token_format}-web", token_format=token_format)
    code = get_code(tenant)

    responses = released_together(TOKEN_USES, lambda _: redeem(tenant, code))

    report(f"authorization code, {token_format} client", TOKEN_USES, Counter(outcome(r) for r in responses))
    winner = assert_one_winner(responses)
    assert_family_ended(tenant, winner)


# --- every loser loses at the single-use UPDATE ----------------------------------------------
#
# Released together, some requests usually arrive after the winner committed and see a used
# token: they take the "replay" path. Here the row is locked from outside until every request has
# read it and waits at its single-use UPDATE, so every loser loses there: the other path.

HELD_USES = 10


def released_behind_a_lock(app, table: str, column: str, value: str, count: int, call) -> list:
    """Lock the row `table.column = sha256(value)` for update, release `count` calls of `call`, let them
    all reach the row, then unlock and return their results."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    digest = sha256_hex(value)
    with ThreadPoolExecutor(max_workers=1) as background:
        if url.startswith("sqlite"):
            holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # the write lock: readers go on (WAL), writers wait
            pending = background.submit(released_together, count, call)
            time.sleep(1.5)  # unobservable on SQLite; well inside the 5 s busy timeout
            holder.execute("ROLLBACK")
            holder.close()
        else:
            plain_url = url.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(plain_url) as holder, psycopg.connect(plain_url, autocommit=True) as watcher:
                locked = holder.execute(f"SELECT id FROM {table} WHERE {column} = %s FOR UPDATE", [digest]).fetchall()
                assert len(locked) == 1
                pending = background.submit(released_together, count, call)
                deadline = time.monotonic() + TIMEOUT
                waiting = 0
                while waiting < count and time.monotonic() < deadline:
                    time.sleep(0.05)
                    waiting = watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    ).fetchone()[0]
                assert waiting == count, f"{waiting} of {count} requests reached the row"
                holder.rollback()
        return pending.result(timeout=TIMEOUT)


@pytest.mark.parametrize("token_format", TOKEN_FORMATS)
def test_refresh_token_losers_at_the_update_end_the_family(app, make_tenant, token_format):
    tenant = make_tenant(client_id=f"{token_format}-web", token_format=token_format)
    token, _ = run_code_flow(tenant, tenant.session())
    presented = token["refresh_token"]

    responses = released_behind_a_lock(
        app, "refresh_tokens", "token_hash", presented, HELD_USES,
        lambda _: token_request(tenant, {"grant_type": "refresh_token", "refresh_token": presented}),
    )  # fmt: skip

    report(f"refresh token behind a lock, {token_format} client", HELD_USES, Counter(outcome(r) for r in responses))
    assert_family_ended(tenant, assert_one_winner(responses))


@pytest.mark.parametrize("token_format", TOKEN_FORMATS)
def test_authorization_code_losers_at_the_update_revoke_what_it_issued(app, make_tenant, token_format):
    tenant = make_tenant(client_id=f"{token_format}-web", token_format=token_format)
    code = get_code(tenant)

    responses = released_behind_a_lock(
        app, "authorization_codes", "code_hash", code, HELD_USES, lambda _: redeem(tenant, code)
    )

    report(
        f"authorization code behind a lock, {token_format} client", HELD_USES, Counter(outcome(r) for r in responses)
    )
    assert_family_ended(tenant, assert_one_winner(responses))


# --- two requests ending one family at once (PostgreSQL) --------------------------------------
#
# Seen in a full run: of 20 parallel refreshes one got 503, PostgreSQL having aborted it for a
# deadlock between two losers. A loser at the single-use UPDATE keeps the row lock it took to
# re-check the row (READ COMMITTED re-checks a concurrently updated row by locking it), then
# denies the family's JWT ids; a loser that saw the used token denies those ids first and then
# updates the family's rows. Here the two orders are forced, step by step, through the services
# the refresh grant calls.


def in_thread(app, steps: list, errors: list):
    """Run `steps` in a thread with its own app context (so its own session and connection)."""

    def run():
        with app.app_context():
            try:
                for step in steps:
                    step()
                db.session.commit()
            except Exception as error:
                errors.append(error)
                db.session.rollback()
            finally:
                db.session.remove()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_for_lock_waiters(app, count: int) -> None:
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as watcher:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()[0]
            if waiting >= count:
                return
            time.sleep(0.02)
    raise AssertionError(f"fewer than {count} sessions came to wait for a lock")


def test_two_losers_ending_one_family_do_not_deadlock(app, database, make_tenant):
    if database.kind != "postgresql":
        pytest.skip("SQLite admits one writer at a time: nothing can deadlock")
    from app.services import tokens
    from app.services.client_cache import find_client

    tenant = make_tenant(client_id="jwt-web", token_format="jwt")
    token, _ = run_code_flow(tenant, tenant.session())
    presented = token["refresh_token"]

    def found():
        client = find_client("jwt-web")
        return client, tokens.find_refresh_token(presented, client)

    steps = {name: threading.Event() for name in ("winner_rotated", "winner_commit", "loser_lost", "loser_go")}
    errors: list = []
    lost: list = []

    def winner_rotates():
        _, row = found()
        assert tokens.rotate_refresh_token(row)
        steps["winner_rotated"].set()
        assert steps["winner_commit"].wait(TIMEOUT)

    loser: dict = {}

    def loser_reads_then_loses():
        assert steps["winner_rotated"].wait(TIMEOUT)
        loser["client"], loser["row"] = found()  # still unused: the winner has not committed
        lost.append(not tokens.rotate_refresh_token(loser["row"]))  # waits for the winner, then loses
        steps["loser_lost"].set()
        assert steps["loser_go"].wait(TIMEOUT)

    def loser_reports():
        tokens.report_reuse(loser["row"], loser["client"])  # what RefreshTokenGrant.save_token does next

    def late_loser_reports():
        client, row = found()
        assert tokens.is_rotated(row)  # what authenticate_refresh_token sees after the winner's commit
        tokens.report_reuse(row, client)

    winner = in_thread(app, [winner_rotates], errors)
    first = in_thread(app, [loser_reads_then_loses, loser_reports], errors)
    wait_for_lock_waiters(app, 1)  # the first loser waits for the winner's row
    steps["winner_commit"].set()
    winner.join(TIMEOUT)
    assert steps["loser_lost"].wait(TIMEOUT) and lost == [True]
    second = in_thread(app, [late_loser_reports], errors)
    # The first loser holds no lock now (its losing UPDATE ran in a savepoint it rolled back), so the
    # late loser is not held up: it ends the family first, then the first loser reports too. Were the
    # lock still held, the late loser would wait here and the two would deadlock below.
    second.join(TIMEOUT)
    steps["loser_go"].set()
    first.join(TIMEOUT)

    assert errors == []
    assert introspect(tenant, token["access_token"]) == {"active": False}


# --- one username, created many times at once ----------------------------------------------


def users_named(username: str, client_id: str = "shop") -> int:
    db.session.rollback()  # a fresh snapshot: the rows were written by other connections
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(User)
        .join(Client, Client.id == User.client_pk)
        .where(Client.client_id == client_id, User.username == username)
    )


@pytest.fixture
def console(app, live, runner, make_client):
    """AuthGate's console initialised for the live server's address, a client `shop`, and a signed-in admin."""
    result = runner.invoke(args=["init", "--admin-password", ADMIN_PASSWORD])
    assert result.exit_code == 0, result.output
    make_client(client_id="shop", name="Shop")
    browser = Browser(live.url)
    page = browser.get("/admin/login")
    assert page.status_code == 200 and page.url.startswith(f"{live.url}/login"), page.url
    landed = browser.login(page, "admin", ADMIN_PASSWORD)
    assert landed.status_code == 200 and landed.url == f"{live.url}/admin/", landed.url
    return browser, re.search(r'name="csrf-token" content="([^"]+)"', landed.text).group(1)


def test_parallel_console_creations_of_one_username(console, live):
    browser, csrf_token = console
    cookies = browser.http.cookies.get_dict()

    def create(i):
        form = {
            "csrf_token": csrf_token,
            "username": "carol",
            "email": f"carol{i}@example.com",  # only the username collides
            "first_name": "Carol",
            "last_name": f"Number {i}",
            "password": "a long enough password",
        }
        return requests.post(
            f"{live.url}/admin/clients/shop/users/new", data=form, cookies=cookies, allow_redirects=False,
            timeout=TIMEOUT,
        )  # fmt: skip

    responses = released_together(CREATIONS, create)

    seen = Counter(r.status_code for r in responses)
    report("console user creation", CREATIONS, seen)
    assert seen == {303: 1, 422: CREATIONS - 1}, seen
    (created,) = (r for r in responses if r.status_code == 303)
    assert created.headers["Location"].endswith("/admin/clients/shop/users/carol")
    for response in responses:
        if response.status_code == 422:
            assert "&#39;carol&#39; is already taken in this client" in response.text, response.text[:2000]
    assert users_named("carol") == 1


# --- the same through the CLI ---------------------------------------------------------------


def test_parallel_cli_creations_of_one_username(app, make_client):
    make_client(client_id="shop", name="Shop")
    args = ["users", "create", "--client", "shop", "--username", "dave", "--password", "a long enough password"]
    results = run_together(
        [[*args, "--email", f"dave{i}@example.com"] for i in range(CREATIONS)],
        command_env(app.config["SQLALCHEMY_DATABASE_URI"]),
    )

    seen = Counter(result.returncode for result in results)
    report("CLI user creation (exit codes)", CREATIONS, seen)
    for result in results:
        if result.returncode == 0:
            assert result.stdout.startswith("Created user dave in client shop"), result.stdout
            assert result.stderr == ""
        else:
            assert "Traceback" not in result.stderr, result.stderr
            assert result.stderr.splitlines() == ["Error: username: 'dave' is already taken in this client"], (
                result.stderr
            )
    assert seen == {0: 1, 2: CREATIONS - 1}, seen
    assert users_named("dave") == 1
