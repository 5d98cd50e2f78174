"""The database goes away while AuthGate serves, then comes back: what every kind of caller sees.

AuthGate runs over real HTTP on a PostgreSQL cluster of its own (initdb and pg_ctl in a temporary
directory, on a free port), which the test stops and starts again; the shared server of the other
tests is never touched. PostgreSQL refuses to run as root, so as root the cluster runs as the
`postgres` OS user (CI runs as root).
"""

import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from app.config import engine_options
from app.extensions import db
from tests.helpers import Browser, LiveServer, make_app
from tests.integration.commands import command_env, run_command
from tests.integration.helpers import PASSWORD, SCOPE, Tenant, authorize_params, run_code_flow

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TIMEOUT = 30
RECOVERY_SECONDS = 15
# In the URLs the tests give AuthGate; it must never be shown (the cluster trusts local connections).
PG_PASSWORD = "hush-hush-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A throw-away PostgreSQL cluster on 127.0.0.1, trusting local connections."""

    def __init__(self):
        if os.geteuid() == 0:
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        elif pwd.getpwuid(os.geteuid()).pw_name == "postgres":
            self.as_postgres = []
        else:
            pytest.skip("starting a PostgreSQL cluster needs root (to run it as postgres) or the postgres user")
        if not (PG_BIN / "pg_ctl").exists():
            pytest.fail(f"PostgreSQL's server programs are missing from {PG_BIN}")
        self.base = Path(tempfile.mkdtemp(prefix="authgate-outage-"))
        if self.as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self.data = self.base / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{self.port}/postgres"
        self.running = False
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _pg(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self.as_postgres, str(PG_BIN / program), *args],
            cwd=self.base, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
        assert result.returncode == 0, f"{program} failed:\n{result.stdout}\n{result.stderr}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} "
            "-c fsync=off -c max_connections=50"
        )
        self._pg("pg_ctl", "start", "-w", "-t", str(TIMEOUT), "-D", str(self.data), "-l", str(self.base / "log"),
                 "-o", options)  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "stop", "-w", "-t", str(TIMEOUT), "-D", str(self.data), "-m", mode)
        self.running = False

    def remove(self) -> None:
        if self.running:
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def cluster():
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def served(cluster):
    """AuthGate migrated onto the cluster and served over HTTP, with a machine client of each token
    format and a web client whose user signs in with a password."""
    from flask_migrate import upgrade

    from app.services import clients, users
    from app.services.keys import ensure_keys

    app = make_app(
        cluster.url,
        # As in production, where the URL comes from AUTHGATE_DATABASE_URL: connect_timeout, no SQL parameters.
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(cluster.url),
        # Long enough that the clients used before the outage stay cached through it.
        AUTHGATE_CLIENT_CACHE_SECONDS=300,
    )
    server = LiveServer(app)
    with app.app_context():
        upgrade()
        ensure_keys()
        _, jwt_secret = clients.create_client(
            client_id="jwt-machine", name="JWT machine", grant_types=["client_credentials"], scopes=["api"],
            token_format="jwt", redirect_uris=[],
        )  # fmt: skip
        _, opaque_secret = clients.create_client(
            client_id="opaque-machine", name="Opaque machine", grant_types=["client_credentials"], scopes=["api"],
            token_format="opaque", redirect_uris=[],
        )  # fmt: skip
        _, web_secret = clients.create_client(
            client_id="web", name="Web", grant_types=["authorization_code", "refresh_token"], scopes=SCOPE.split(),
            redirect_uris=["http://127.0.0.1:8765/cb"],
        )  # fmt: skip
        alice = users.create_user("web", "alice", password=PASSWORD, email="alice@example.com")
        db.session.remove()
    yield {
        "jwt": Tenant(server.url, "jwt-machine", jwt_secret, None),
        "opaque": Tenant(server.url, "opaque-machine", opaque_secret, None),
        "web": Tenant(server.url, "web", web_secret, alice),
    }
    server.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class Calls:
    """Every response of a phase, so the phase's figures can be reported and its request ids checked."""

    def __init__(self, phase: str):
        self.phase = phase
        self.seen: Counter = Counter()
        self.responses: list[tuple[str, requests.Response]] = []

    def __call__(self, what: str, response: requests.Response) -> requests.Response:
        assert response.headers.get("X-Request-Id"), (what, response.headers)
        assert PG_PASSWORD not in response.text, (what, response.text)
        self.seen[(what, response.status_code)] += 1
        self.responses.append((what, response))
        return response

    def report(self) -> None:
        total = sum(self.seen.values())
        print(f"\nOUTAGE {self.phase}: sent {total}, seen {dict(sorted(self.seen.items()))}")


def client_credentials(tenant: Tenant) -> requests.Response:
    return requests.post(
        f"{tenant.url}/oauth2/token", data={"grant_type": "client_credentials", "scope": "api"},
        auth=(tenant.client_id, tenant.secret), timeout=TIMEOUT,
    )  # fmt: skip


def introspect(tenant: Tenant, token: str) -> requests.Response:
    return requests.post(
        f"{tenant.url}/oauth2/introspect", data={"token": token}, auth=(tenant.client_id, tenant.secret),
        timeout=TIMEOUT,
    )  # fmt: skip


def assert_unavailable_json(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Cache-Control"] == "no-store"


def assert_unavailable_page(response: requests.Response) -> None:
    assert response.status_code == 503, response.text[:500]
    assert response.headers["Content-Type"].startswith("text/html"), response.headers
    assert "Internal Server Error" not in response.text
    assert "briefly unavailable" in response.text, response.text[:1000]
    assert int(response.headers["Retry-After"]) > 0


def traceback_counts(records: list[logging.LogRecord]) -> Counter:
    """How many tracebacks were logged for each distinct error (logger, exception class, first line)."""
    counts: Counter = Counter()
    for record in records:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            first_line = (str(error).strip().splitlines() or [""])[0]
            counts[(record.name, type(error).__name__, first_line)] += 1
    return counts


def test_an_outage_and_the_recovery(cluster, served, caplog):
    caplog.set_level(logging.INFO)
    jwt_machine, opaque_machine, web = served["jwt"], served["opaque"], served["web"]
    url = web.url

    # --- before: every client has been used once ---------------------------------------------
    before = Calls("before")
    assert before("jwt client_credentials", client_credentials(jwt_machine)).status_code == 200
    opaque_token = before("opaque client_credentials", client_credentials(opaque_machine)).json()["access_token"]
    assert before("introspect", introspect(opaque_machine, opaque_token)).json()["active"] is True
    _, browser = run_code_flow(web, web.session())
    assert before("readyz", requests.get(f"{url}/readyz", timeout=TIMEOUT)).status_code == 200
    before.report()

    # --- the database goes away --------------------------------------------------------------
    caplog.clear()
    cluster.stop("fast")
    during = Calls("during")
    for _ in range(3):
        health = during("healthz", requests.get(f"{url}/healthz", timeout=TIMEOUT))
        assert health.status_code == 200 and health.json()["status"] == "ok"

        ready = during("readyz", requests.get(f"{url}/readyz", timeout=TIMEOUT))
        assert ready.status_code == 503 and ready.headers["Content-Type"].startswith("application/json")
        assert ready.json()["status"] == "unavailable" and ready.json()["checks"]["database"] != "ok"

        # The client is cached and the key ring keeps its keys: a JWT needs no table.
        granted = during("jwt client_credentials", client_credentials(jwt_machine))
        assert granted.status_code == 200, granted.text
        assert granted.json()["access_token"].count(".") == 2

        # An opaque token must be stored: it cannot be issued now.
        assert_unavailable_json(during("opaque client_credentials", client_credentials(opaque_machine)))
        assert_unavailable_json(during("introspect", introspect(opaque_machine, opaque_token)))

        # The signed-in browser comes back to sign in again: its session is in the database.
        query = urlencode(authorize_params("web", scope="openid profile"))
        assert_unavailable_page(during("authorize (signed in)", browser.get(f"/oauth2/authorize?{query}")))
        # A new browser is sent to the sign-in page, which asks the database for the client's providers.
        query = urlencode(authorize_params("web", scope="openid profile", nonce=None))
        assert_unavailable_page(during("authorize -> /login", Browser(url).get(f"/oauth2/authorize?{query}")))
    during.report()

    outage_records = list(caplog.records)
    tracebacks = traceback_counts(outage_records)
    print(f"OUTAGE log: {len(outage_records)} records, tracebacks per distinct error {dict(tracebacks)}")
    repeated = {error: n for error, n in tracebacks.items() if n > 1}
    assert not repeated, repeated
    assert PG_PASSWORD not in caplog.text
    # Each failed request is logged in one line with its request id, so an operator can find it.
    messages = [record.getMessage() for record in outage_records]
    for what, response in during.responses:
        if response.status_code == 503 and what != "readyz":
            request_id = response.headers["X-Request-Id"]
            assert sum(f"request_id={request_id} " in m for m in messages) == 1, (what, request_id, messages)

    # --- the database comes back on the same port; AuthGate is not restarted -------------------
    cluster.start()
    after = Calls("after")
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        ready = after("readyz", requests.get(f"{url}/readyz", timeout=TIMEOUT))
        if ready.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ready.status_code == 200, ready.text
    recovered_after = RECOVERY_SECONDS - (deadline - time.monotonic())
    print(f"OUTAGE recovery: /readyz 200 {recovered_after:.2f} s after the cluster was back")
    granted = after("opaque client_credentials", client_credentials(opaque_machine))
    assert granted.status_code == 200, granted.text
    assert after("introspect", introspect(opaque_machine, granted.json()["access_token"])).json()["active"] is True
    assert after("jwt client_credentials", client_credentials(jwt_machine)).status_code == 200
    query = urlencode(authorize_params("web", scope="openid profile"))
    back = after("authorize (signed in)", browser.get(f"/oauth2/authorize?{query}"))
    assert back.status_code == 302 and "code=" in back.headers["Location"], back.text[:500]
    after.report()


@pytest.fixture(scope="module")
def init_without_database():
    """`flask init` run once against a port where nothing listens, allowed to wait one second."""
    port = free_port()
    database_url = f"postgresql://authgate:{PG_PASSWORD}@127.0.0.1:{port}/authgate"
    result = run_command(["init"], command_env(database_url, AUTHGATE_DB_WAIT_SECONDS="1"))
    print(f"\nOUTAGE flask init: exit {result.returncode} after {result.seconds:.2f} s: {result.stderr.strip()}")
    return port, result


def test_flask_init_gives_up_on_an_unreachable_database_in_one_line(init_without_database):
    port, result = init_without_database
    assert result.returncode == 1, result.stderr
    assert 1.0 <= result.seconds < 3.0, result.seconds  # it waited the second it was given, and no more
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: cannot reach the database postgresql+psycopg://authgate"), lines[0]
    assert f"@127.0.0.1:{port}/authgate: " in lines[0] and lines[0].endswith("Connection refused"), lines[0]
    assert "Traceback" not in result.stderr


def test_flask_init_names_the_database_without_its_password(init_without_database):
    port, result = init_without_database
    assert PG_PASSWORD not in result.stderr + result.stdout
    assert result.stderr.startswith(
        f"Error: cannot reach the database postgresql+psycopg://authgate@127.0.0.1:{port}/authgate: "
    ), result.stderr
