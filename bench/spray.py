"""Scenario 8's two load generators: a password spray at the hosted sign-in, and the user it must not starve.

Each runs in its own process (bench/run.py starts both on the load generator's core), so the
spray cannot slow the event loop of the client that measures the user:

    python -m bench.spray attack --base URL --secret S --connections 32 --source 127.0.0.2 [--rotate-forwarded-for]
    python -m bench.spray user --base URL --secret S --warmup 3 --duration 10 --min-flows 20 [--forwarded-for A]

`attack` opens one browser session per connection, as a sprayer's script would: an authorization
request followed to the login page gives it the session cookie, the CSRF token and the request
id. Then every connection posts a wrong password to the login form, back to back, each time for
a username never tried before (one password across many accounts). It prints READY once every
connection has its form; SIGUSR1 starts the count afresh (the end of the spray's warm-up);
SIGTERM ends the spray and prints one JSON line: attempts, attempts per second, the answers (the login page again,
that is a wrong password; 429; 503; anything else) and their latency.

`user` signs in again and again, one sign-in at a time, each a whole code flow in a new user
agent (authorization request, login page, POST /login with the right password, the redirect back
with a code, the code exchange: what a person waits for), for at least `--duration` seconds and
`--min-flows` sign-ins, and prints their latencies and any failures as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import json
import os
import signal
import sys
from urllib.parse import urlencode

from bench.flow import FlowClient, FlowError, LoginForm, add_client_options, cpu_seconds, latency_summary

SPRAY_PASSWORD = "Winter2025!"  # the one wrong password a spray tries on every account
FORWARDED_BASE = int(ipaddress.IPv4Address("10.0.0.1"))  # spray_xff: a new 10.x.y.z address per attempt
LOGIN_PAGE_MARK = b'type="password"'  # the login form came back: the password was wrong
MAX_SAMPLES = 5


class Spray:
    """The attacker's state: counters since the last reset, and the next username and address."""

    def __init__(self, rotate_forwarded_for: bool):
        self.rotate = rotate_forwarded_for
        # A username never tried before on every attempt, none of them an account: AuthGate spends
        # a full bcrypt on an unknown username as on a wrong password (so timing does not tell which
        # accounts exist), so each attempt costs the server the same, and no account is tried twice.
        self.usernames = (f"spray-{n:07d}" for n in itertools.count())
        self.addresses = (str(ipaddress.IPv4Address(FORWARDED_BASE + n % 0xFFFFFE)) for n in itertools.count())
        self.errors = {"socket": 0, "setup": 0}
        self.samples: list[str] = []
        self.reset()

    def reset(self):
        """Count from now on: the end of the warm-up."""
        self.answers: dict[str, int] = {}
        self.latencies: list[float] = []
        self.errors = dict.fromkeys(self.errors, 0)
        self.started = asyncio.get_running_loop().time()
        self.cpu0 = cpu_seconds()

    def attempt(self, fields: list[tuple[str, str]]) -> tuple[dict[str, str], bytes]:
        """The headers and body of the next wrong password."""
        headers = {"X-Forwarded-For": next(self.addresses)} if self.rotate else {}
        body = urlencode([*fields, ("username", next(self.usernames)), ("password", SPRAY_PASSWORD)]).encode()
        return headers, body

    def record(self, kind: str, seconds: float | None = None, detail: str = ""):
        if kind in self.errors:
            self.errors[kind] += 1
            if len(self.samples) < MAX_SAMPLES:
                self.samples.append(f"{kind}: {detail}"[:300])
        else:
            self.answers[kind] = self.answers.get(kind, 0) + 1
        if seconds is not None:
            self.latencies.append(seconds)

    def summary(self, connections: int, source: str | None) -> dict:
        loop = asyncio.get_running_loop()
        wall = loop.time() - self.started
        attempts = sum(self.answers.values())
        return {
            "connections": connections,
            "source": source,
            "forwarded_for": "a new address per attempt" if self.rotate else None,
            "usernames": "a new one per attempt, none of them an account",
            "attempts": attempts,
            "duration_s": round(wall, 3),
            "attempts_per_s": attempts / wall if wall else 0.0,
            "answers": dict(sorted(self.answers.items())),
            "latency_ms": latency_summary(self.latencies),
            "errors": self.errors,
            "error_samples": self.samples,
            "loadgen_cpu_pct": 100 * (cpu_seconds() - self.cpu0) / wall if wall else 0.0,
        }


def answer_kind(status: int, body: bytes) -> str:
    """What the server said to a wrong password: its login page again (200), 429 or 503, or something else."""
    if status == 200 and LOGIN_PAGE_MARK in body:
        return "wrong_password"
    if status in (429, 503):
        return str(status)
    return f"unexpected_{status}"


async def sprayer(client: FlowClient, form: LoginForm, spray: Spray):
    """One attacker connection: post wrong passwords to its login form until cancelled."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            jar, action, fields = form
            headers, body = spray.attempt(fields)
            t0 = loop.time()
            try:
                resp = await client.send("POST", action, jar, headers=headers, body=body)
            except FlowError as exc:
                spray.record("socket", detail=str(exc))
                client.close()
                await asyncio.sleep(0.05)  # do not spin on a failing server
                continue
            kind = answer_kind(resp.status, resp.body)
            spray.record(kind, loop.time() - t0)
            if kind.startswith("unexpected"):
                form = await reopen(client, spray)  # a session or CSRF token the server no longer takes
    finally:
        client.close()


async def reopen(client: FlowClient, spray: Spray) -> LoginForm:
    """A new browser session and its login form, trying again until the server gives one."""
    while True:
        try:
            return await client.login_form()
        except FlowError as exc:
            spray.record("setup", detail=str(exc))
            client.close()
            await asyncio.sleep(0.1)


async def run_attack(args) -> None:
    loop = asyncio.get_running_loop()
    clients = [FlowClient.from_args(args) for _ in range(args.connections)]
    try:
        forms = await asyncio.gather(*(client.login_form() for client in clients))
    except FlowError as exc:
        raise SystemExit(f"the spray could not open a login form: {exc}") from None
    spray = Spray(args.rotate_forwarded_for)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, spray.reset)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Held here so the loop keeps them (it only references tasks weakly) until the process exits.
    _sprayers = [asyncio.create_task(sprayer(c, form, spray)) for c, form in zip(clients, forms, strict=True)]
    print("READY", flush=True)
    await stop.wait()
    # Report and leave at once: winding 32 connections down politely can take longer than the
    # runner waits while the server is still answering them as fast as it can.
    json.dump(spray.summary(args.connections, args.source), sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    os._exit(0)


async def run_user(args) -> dict:
    """Sign-ins one after another: a warm-up, then at least `duration` seconds and `min_flows` sign-ins."""
    loop = asyncio.get_running_loop()
    client = FlowClient.from_args(args)
    expect_refresh = "offline_access" in args.scope.split()

    async def sign_in() -> tuple[float, FlowError | None]:
        t0 = loop.time()
        try:
            await client.flow(expect_refresh)
        except FlowError as exc:
            client.close()
            await asyncio.sleep(0.05)  # do not spin on a failing server
            return loop.time() - t0, exc
        return loop.time() - t0, None

    warmup_failed = 0
    warm_until = loop.time() + args.warmup
    while True:  # at least one sign-in: the first one also checks that the flow works
        _, exc = await sign_in()
        if exc is not None:
            warmup_failed += 1
        if loop.time() >= warm_until:
            break
    latencies: list[float] = []
    failed: dict[str, int] = {}
    samples: list[str] = []
    start, cpu0 = loop.time(), cpu_seconds()

    def more() -> bool:
        elapsed, attempted = loop.time() - start, len(latencies) + sum(failed.values())
        return elapsed < args.max_duration and (elapsed < args.duration or attempted < args.min_flows)

    while more():
        seconds, exc = await sign_in()
        if exc is None:
            latencies.append(seconds)
        else:
            failed[exc.kind] = failed.get(exc.kind, 0) + 1
            if len(samples) < MAX_SAMPLES:
                samples.append(str(exc)[:300])
    client.close()
    wall = loop.time() - start
    attempted = len(latencies) + sum(failed.values())
    return {
        "flows": len(latencies),
        "attempted": attempted,
        "success_rate": len(latencies) / attempted if attempted else 0.0,
        "duration_s": round(wall, 3),
        "flows_per_s": len(latencies) / wall,
        "latency_ms": latency_summary(latencies),
        "failed": failed,
        "error_samples": samples,
        "warmup_failed": warmup_failed,
        "loadgen_cpu_pct": 100 * (cpu_seconds() - cpu0) / wall,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = p.add_subparsers(dest="mode", required=True)
    attack = modes.add_parser("attack", help="spray wrong passwords until SIGTERM")
    add_client_options(attack)
    attack.add_argument("--connections", type=int, default=32)
    attack.add_argument(
        "--rotate-forwarded-for", action="store_true", help="send each attempt with a new X-Forwarded-For address"
    )
    user = modes.add_parser("user", help="one user's sign-ins, one at a time")
    add_client_options(user)
    user.add_argument("--warmup", type=float, default=2.0)
    user.add_argument("--duration", type=float, default=10.0, help="measure for at least this many seconds")
    user.add_argument("--min-flows", type=int, default=20, help="... and at least this many sign-ins")
    user.add_argument("--max-duration", type=float, default=180.0, help="... but no longer than this")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.mode == "attack":
        asyncio.run(run_attack(args))  # prints its summary and exits
    out = asyncio.run(run_user(args))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
