"""`make serve` as the tests start it: granian workers on a free port over a SQLite file, and the CLI beside them."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def make_serve(tmp_path: Path, workers: int = 2, **settings: str) -> Iterator[tuple[str, dict]]:
    """Run `make serve` with these AUTHGATE_* settings until /readyz answers 200; yield (base URL, environment)."""
    if shutil.which("make") is None:
        pytest.skip("make is missing")
    port = free_port()
    env = {
        **os.environ,
        "AUTHGATE_DATABASE_URL": f"sqlite:///{tmp_path}/authgate.db",
        "AUTHGATE_SECRET_KEY": "k" * 40,
        "AUTHGATE_ISSUER": f"http://127.0.0.1:{port}",
        "AUTHGATE_BCRYPT_ROUNDS": "4",
        "AUTHGATE_MAINTENANCE_SECONDS": "0",
        **settings,
    }
    server = subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"PORT={port}", f"AUTHGATE_WORKERS={workers}", "AUTHGATE_THREADS=2"],
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


def flask_cli(env: dict, *args: str) -> str:
    """Run a `flask` command against the served database; return what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout
