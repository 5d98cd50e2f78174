"""`keys rotate --now` reaches every worker of `make serve` within about a second.

Two granian workers serve one SQLite database; each keeps its own key ring, re-read fully only
every AUTHGATE_KEY_REFRESH_SECONDS (30 here). What makes the new key reach both at once is the
key-ring version each worker reads at most once a second. Tokens are fetched on fresh connections,
so the two processes share the requests between them.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
WITHIN = 2.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


@pytest.fixture
def served(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is missing")
    port = _free_port()
    env = {
        **os.environ,
        "AUTHGATE_DATABASE_URL": f"sqlite:///{tmp_path}/authgate.db",
        "AUTHGATE_SECRET_KEY": "k" * 40,
        "AUTHGATE_ISSUER": f"http://127.0.0.1:{port}",
        "AUTHGATE_BCRYPT_ROUNDS": "4",
        "AUTHGATE_KEY_REFRESH_SECONDS": "30",
        "AUTHGATE_MAINTENANCE_SECONDS": "0",
    }
    server = subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"PORT={port}", "AUTHGATE_WORKERS=2", "AUTHGATE_THREADS=2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, server.stderr.read().decode()[-2000:] if server.stderr else ""
            assert time.monotonic() < deadline, "make serve did not become ready within 60 s"
            time.sleep(0.2)
        yield base, env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        if server.stderr:
            server.stderr.close()


def _flask(env, *args) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rotate_now_reaches_both_workers_within_two_seconds(served):
    base, env = served
    out = _flask(
        env, "clients", "create", "--client-id", "m2m", "--name", "M2M", "--grant-type", "client_credentials",
        "--auth-method", "client_secret_basic", "--signing-alg", "ES256", "--json",
    )  # fmt: skip
    secret = json.loads(out[out.index("{") :])["client_secret"]

    def kids(count: int) -> set[str]:
        seen = set()
        for _ in range(count):
            # A new connection each time: the two worker processes take turns accepting them.
            response = requests.post(
                f"{base}/oauth2/token", data={"grant_type": "client_credentials"}, auth=("m2m", secret), timeout=5
            )
            assert response.status_code == 200, response.text
            seen.add(_kid(response.json()["access_token"]))
        return seen

    before = kids(20)
    assert len(before) == 1
    rotated = json.loads(_flask(env, "keys", "rotate", "--alg", "ES256", "--now", "--json"))
    new_kid = rotated[0]["kid"]
    assert new_kid not in before
    started = time.monotonic()
    time.sleep(WITHIN)
    # Both workers now sign with the new key: 20 fresh connections all get it.
    assert kids(20) == {new_kid}, f"after {time.monotonic() - started:.1f} s"
