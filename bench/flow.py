"""Scripted authorization code + PKCE flow (scenario 6), and token helpers for the harness.

A flow is what a browser and a relying party would do, without a browser: GET the authorize
URL, follow redirects by hand (keeping cookies), on an HTML page find the login form (the form
with a password input) and POST every hidden input back with username and password, click
`decision=allow` if a consent form shows, follow redirects until one points at the
redirect_uri, check `state`, then exchange the code with the PKCE verifier. It knows nothing of
any one server's pages, so the same logic drives AuthGate, oidc-provider and DOT.

    python -m bench.flow once --base http://127.0.0.1:8001 --secret S          # one flow, prints tokens
    python -m bench.flow tokens --base ... --secret S --count 72 --scope "openid offline_access"
    python -m bench.flow load --base ... --secret S --concurrency 64 --warmup 2 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import resource
import secrets
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from bench.httpclient import Connection, CookieJar, HTTPError, Response, basic_auth, split_target

MAX_STEPS = 12


class FlowError(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class _Forms(HTMLParser):
    """Collect <form>s: action, method, inputs (name -> value, type) and submit buttons."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = {
                "action": a.get("action", ""),
                "method": (a.get("method") or "get").upper(),
                "inputs": [],
                "buttons": [],
            }
            self.forms.append(self._form)
        elif self._form is not None and tag == "input":
            self._form["inputs"].append((a.get("name", ""), a.get("value", ""), a.get("type", "text").lower()))
        elif self._form is not None and tag == "button" and a.get("name"):
            self._form["buttons"].append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class FlowClient:
    """Runs flows over one keep-alive connection; each flow is a fresh user agent (new cookies)."""

    def __init__(
        self,
        base: str,
        client_id: str,
        secret: str,
        username: str,
        password: str,
        redirect_uri: str,
        scope: str,
        timeout: float = 60.0,
    ):
        parts = urlsplit(base)
        self.netloc = parts.netloc
        self.conn = Connection(parts.hostname, parts.port or 80, timeout=timeout)
        self.client_id, self.secret = client_id, secret
        self.username, self.password = username, password
        self.redirect_uri, self.scope = redirect_uri, scope
        self.requests = 0

    @classmethod
    def from_args(cls, args) -> FlowClient:
        """A client for the command line's --base, --client-id, --secret, ... options."""
        return cls(args.base, args.client_id, args.secret, args.username, args.password,
                   args.redirect_uri, args.scope, timeout=args.timeout)  # fmt: skip

    async def _send(self, method, target, jar: CookieJar | None, headers=None, body=None) -> Response:
        headers = dict(headers or {})
        headers.setdefault("User-Agent", "authgate-bench/1")
        if jar is not None:
            cookie = jar.header(target)
            if cookie:
                headers["Cookie"] = cookie
        if body is not None:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        self.requests += 1
        try:
            resp = await self.conn.request(method, target, headers, body)
        except HTTPError as exc:
            raise FlowError("socket", str(exc)) from None
        if jar is not None:
            jar.update(resp, target)
        return resp

    async def authorize(self) -> tuple[str, str, int]:
        """Log in through the authorization endpoint; return (code, verifier, steps)."""
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scope,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        jar = CookieJar()
        method, target, body = "GET", f"/oauth2/authorize?{query}", None
        logins = 0
        for step in range(1, MAX_STEPS + 1):
            resp = await self._send(method, target, jar, body=body)
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.header("location")
                if not location:
                    raise FlowError("protocol", f"{resp.status} without Location at {target}")
                absolute = urljoin(f"http://{self.netloc}{target}", location)
                if absolute.startswith(self.redirect_uri):
                    params = parse_qs(urlsplit(absolute).query)
                    if "error" in params:
                        raise FlowError("oauth", f"authorization error {params}")
                    if params.get("state") != [state]:
                        raise FlowError("protocol", f"state mismatch in {absolute}")
                    if "code" not in params:
                        raise FlowError("protocol", f"no code in {absolute}")
                    return params["code"][0], verifier, step
                try:
                    target = split_target(absolute, self.netloc)
                except ValueError as exc:
                    raise FlowError("protocol", str(exc)) from None
                if resp.status in (301, 302, 303):
                    method, body = "GET", None
                continue
            if resp.status != 200:
                raise FlowError(f"http_{resp.status}", f"{method} {target.split('?')[0]}: {resp.text[:200]!r}")
            parser = _Forms()
            parser.feed(resp.text)
            login = next((f for f in parser.forms if any(t == "password" for _, _, t in f["inputs"])), None)
            consent = next((f for f in parser.forms if any(n == "decision" for n, _ in f["buttons"])), None)
            form = login or consent
            if form is None:
                raise FlowError("protocol", f"200 page without a login or consent form at {target.split('?')[0]}")
            fields = [(n, v) for n, v, t in form["inputs"] if t == "hidden" and n]
            if login is not None:
                logins += 1
                if logins > 1:
                    raise FlowError("login_rejected", "the login form came back after submitting it")
                fields += [("username", self.username), ("password", self.password)]
            else:
                fields.append(("decision", "allow"))
            action = urljoin(f"http://{self.netloc}{target}", form["action"] or target)
            try:
                action_target = split_target(action, self.netloc)
            except ValueError as exc:
                raise FlowError("protocol", str(exc)) from None
            if form["method"] == "POST":
                method, target, body = "POST", action_target, urlencode(fields).encode()
            else:
                sep = "&" if "?" in action_target else "?"
                method, target, body = "GET", f"{action_target}{sep}{urlencode(fields)}", None
        raise FlowError("protocol", f"no redirect to the redirect_uri after {MAX_STEPS} steps")

    async def token(self, params: dict) -> dict:
        resp = await self._send(
            "POST",
            "/oauth2/token",
            None,
            headers={"Authorization": basic_auth(self.client_id, self.secret), "Accept": "application/json"},
            body=urlencode(params).encode(),
        )
        if resp.status != 200:
            raise FlowError(f"http_{resp.status}", f"token endpoint: {resp.text[:200]!r}")
        try:
            return resp.json()
        except ValueError:
            raise FlowError("protocol", f"token response is not JSON: {resp.text[:100]!r}") from None

    async def flow(self, expect_refresh: bool) -> dict:
        code, verifier, steps = await self.authorize()
        tokens = await self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            }
        )
        if "access_token" not in tokens:
            raise FlowError("protocol", f"no access_token in {sorted(tokens)}")
        if "openid" in self.scope.split() and "id_token" not in tokens:
            raise FlowError("protocol", "no id_token for an openid request")
        if expect_refresh and "refresh_token" not in tokens:
            raise FlowError("protocol", "no refresh_token although offline_access was asked for")
        tokens["_steps"] = steps + 1
        return tokens

    def close(self):
        self.conn.close()


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


async def run_load(args) -> dict:
    """`concurrency` users, each on its own keep-alive connection, doing flows back to back."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + args.warmup
    measure_to = measure_from + args.duration
    latencies: list[float] = []
    errors: dict[str, int] = {}
    warmup_errors: dict[str, int] = {}
    error_samples: list[str] = []
    steps_seen: dict[int, int] = {}
    expect_refresh = "offline_access" in args.scope.split()

    async def user(i):
        client = FlowClient.from_args(args)
        try:
            while loop.time() < measure_to:
                t0 = loop.time()
                try:
                    tokens = await client.flow(expect_refresh)
                    ok, kind = True, None
                except FlowError as exc:
                    ok, kind = False, exc.kind
                    if len(error_samples) < 5:
                        error_samples.append(str(exc)[:300])
                    client.close()
                t1 = loop.time()
                if t1 > measure_to:
                    break  # finished after the window: not counted
                if t1 < measure_from:
                    if not ok:
                        warmup_errors[kind] = warmup_errors.get(kind, 0) + 1
                    continue
                if ok:
                    latencies.append(t1 - t0)
                    steps_seen[tokens["_steps"]] = steps_seen.get(tokens["_steps"], 0) + 1
                else:
                    errors[kind] = errors.get(kind, 0) + 1
                    await asyncio.sleep(0.05)  # do not spin on a failing server
        finally:
            client.close()

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    tasks = [asyncio.create_task(user(i)) for i in range(args.concurrency)]
    await asyncio.sleep(max(0.0, measure_to - loop.time()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = loop.time() - start
    latencies.sort()
    return {
        "flows": len(latencies),
        "duration_s": args.duration,
        "flows_per_s": len(latencies) / args.duration,
        "requests_per_flow": dict(sorted(steps_seen.items())),
        "latency_ms": {
            "p50": 1000 * _percentile(latencies, 50),
            "p90": 1000 * _percentile(latencies, 90),
            "p99": 1000 * _percentile(latencies, 99),
            "max": 1000 * (latencies[-1] if latencies else 0.0),
            "mean": 1000 * (sum(latencies) / len(latencies) if latencies else 0.0),
        },
        "errors": errors,
        "warmup_errors": warmup_errors,
        "error_samples": error_samples,
        "loadgen_cpu_pct": 100 * ((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)) / wall,
    }


async def collect_tokens(args) -> list[dict]:
    """`count` completed flows over `concurrency` connections; returns the token responses."""
    results: list[dict] = []
    failures: list[str] = []
    remaining = args.count

    async def user():
        nonlocal remaining
        client = FlowClient.from_args(args)
        try:
            while remaining > 0:
                remaining -= 1
                try:
                    results.append(await client.flow("offline_access" in args.scope.split()))
                except FlowError as exc:
                    failures.append(str(exc))
                    client.close()
                    if len(failures) > 3:
                        return
        finally:
            client.close()

    await asyncio.gather(*(user() for _ in range(min(args.concurrency, args.count))))
    if len(results) < args.count:
        raise SystemExit(f"only {len(results)} of {args.count} flows succeeded: {failures[:3]}")
    return results


def _parser() -> argparse.ArgumentParser:
    shared = json.loads((Path(__file__).resolve().parent / "peers" / "clients.json").read_text())
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["once", "tokens", "load"])
    p.add_argument("--base", required=True, help="server base URL, e.g. http://127.0.0.1:8001")
    p.add_argument("--client-id", default="bench-web")
    p.add_argument("--secret", default=shared["clients"]["bench-web"]["secret"])
    p.add_argument("--username", default=shared["user"]["username"])
    p.add_argument("--password", default=shared["user"]["password"])
    p.add_argument("--redirect-uri", default=shared["redirect_uri"])
    p.add_argument("--scope", default="openid offline_access")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--count", type=int, default=64, help="tokens mode: number of flows")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, seconds")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.mode == "load":
        out = asyncio.run(run_load(args))
    elif args.mode == "tokens":
        out = asyncio.run(collect_tokens(args))
    else:
        args.count, args.concurrency = 1, 1
        out = asyncio.run(collect_tokens(args))[0]
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    t = time.time()
    main()
