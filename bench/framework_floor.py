"""The framework floor: what a do-nothing app answers per second under AuthGate's server and pinning.

The crypto floor bounds scenario 1 from below in signatures; this bounds every scenario in
requests: a WSGI app that returns a fixed JSON body, bare and inside Flask, served by granian with
one worker pinned to core 1 (AuthGate's settings), loaded by wrk on core 0 with 64 connections.
No AuthGate request can be cheaper than the Flask row.

    .venv/bin/python -m bench.framework_floor [--seconds 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BODY = b'{"ok":true}'
APPS = {"bare WSGI": "bench.framework_floor:bare_app", "Flask": "bench.framework_floor:flask_app"}


def bare_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]


def _flask():
    from flask import Flask

    app = Flask(__name__)

    @app.get("/")
    def index():
        return {"ok": True}

    return app


flask_app = _flask() if os.environ.get("BENCH_FLOOR_FLASK") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server on :{port} did not start")


def _wrk(port: int, seconds: float) -> dict:
    out = subprocess.run(
        ["taskset", "-c", "0", "wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"requests_per_s": round(rate, 1), "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else None}  # fmt: skip


def measure(target: str, seconds: float, threads: int) -> dict:
    port = _free_port()
    env = dict(os.environ, BENCH_FLOOR_FLASK="1")
    granian = str(Path(sys.executable).with_name("granian"))
    command = ["taskset", "-c", "1", granian, "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--blocking-threads", str(threads), "--backlog", "2048", "--log-level", "warning",
               target]  # fmt: skip
    server = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        _wait_for(port)
        _wrk(port, 3)  # warm-up
        return _wrk(port, seconds)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = {}
    for name, target in APPS.items():
        results[name] = measure(target, args.seconds, args.threads)
        print(f"{name:10s} {results[name]['requests_per_s']:>10,.1f} requests/s", flush=True)
    if args.json:
        payload = {"date": time.strftime("%Y-%m-%d"), "server": f"granian, 1 worker, {args.threads} threads, core 1",
                   "load": "wrk -t1 -c64 on core 0", "seconds": args.seconds, "results": results}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
