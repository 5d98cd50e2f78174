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


REDIRECTS = (301, 302, 303, 307, 308)
LoginForm = tuple[CookieJar, str, list[tuple[str, str]]]  # cookies, where the form posts to, its hidden fields


def hidden_fields(form: dict) -> list[tuple[str, str]]:
    """The hidden inputs a browser posts back with a form: CSRF token, request id."""
    return [(n, v) for n, v, t in form["inputs"] if t == "hidden" and n]


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
        source: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        parts = urlsplit(base)
        self.netloc = parts.netloc
        self.conn = Connection(parts.hostname, parts.port or 80, timeout=timeout, source=source)
        self.client_id, self.secret = client_id, secret
        self.username, self.password = username, password
        self.redirect_uri, self.scope = redirect_uri, scope
        self.headers = dict(headers or {})  # sent with every request (X-Forwarded-For behind a proxy)
        self.requests = 0

    @classmethod
    def from_args(cls, args) -> FlowClient:
        """A client for the command line's --base, --client-id, --secret, ... options."""
        headers = {"X-Forwarded-For": args.forwarded_for} if args.forwarded_for else None
        return cls(args.base, args.client_id, args.secret, args.username, args.password,
                   args.redirect_uri, args.scope, timeout=args.timeout, source=args.source,
                   headers=headers)  # fmt: skip

    async def send(self, method, target, jar: CookieJar | None, headers=None, body=None) -> Response:
        """One request as this user agent: its cookies, its fixed headers, then `headers`."""
        headers = {"User-Agent": "authgate-bench/1", **self.headers, **(headers or {})}
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

    def _authorization_request(self) -> tuple[str, str, str]:
        """A new authorization request: (its path and query, the PKCE verifier, the state)."""
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
        return f"/oauth2/authorize?{query}", verifier, state

    def _absolute(self, target: str, url: str) -> str:
        return urljoin(f"http://{self.netloc}{target}", url)

    def _local(self, url: str) -> str:
        """The path and query to request next, refusing to leave the server under test."""
        try:
            return split_target(url, self.netloc)
        except ValueError as exc:
            raise FlowError("protocol", str(exc)) from None

    def _location(self, resp: Response, target: str) -> str:
        location = resp.header("location")
        if not location:
            raise FlowError("protocol", f"{resp.status} without Location at {target}")
        return self._absolute(target, location)

    @staticmethod
    def _forms(resp: Response, method: str, target: str) -> tuple[dict | None, dict | None]:
        """The login form (the one with a password input) and the consent form of a 200 page."""
        if resp.status != 200:
            raise FlowError(f"http_{resp.status}", f"{method} {target.split('?')[0]}: {resp.text[:200]!r}")
        parser = _Forms()
        parser.feed(resp.text)
        login = next((f for f in parser.forms if any(t == "password" for _, _, t in f["inputs"])), None)
        consent = next((f for f in parser.forms if any(n == "decision" for n, _ in f["buttons"])), None)
        if login is None and consent is None:
            raise FlowError("protocol", f"200 page without a login or consent form at {target.split('?')[0]}")
        return login, consent

    def _code(self, redirect: str, state: str) -> str:
        """The authorization code of the redirect back to the client, after checking `state`."""
        params = parse_qs(urlsplit(redirect).query)
        if "error" in params:
            raise FlowError("oauth", f"authorization error {params}")
        if params.get("state") != [state]:
            raise FlowError("protocol", f"state mismatch in {redirect}")
        if "code" not in params:
            raise FlowError("protocol", f"no code in {redirect}")
        return params["code"][0]

    async def authorize(self) -> tuple[str, str, int]:
        """Log in through the authorization endpoint; return (code, verifier, steps)."""
        target, verifier, state = self._authorization_request()
        jar = CookieJar()
        method, body = "GET", None
        logins = 0
        for step in range(1, MAX_STEPS + 1):
            resp = await self.send(method, target, jar, body=body)
            if resp.status in REDIRECTS:
                absolute = self._location(resp, target)
                if absolute.startswith(self.redirect_uri):
                    return self._code(absolute, state), verifier, step
                target = self._local(absolute)
                if resp.status in (301, 302, 303):
                    method, body = "GET", None
                continue
            login, consent = self._forms(resp, method, target)
            form = login or consent
            fields = hidden_fields(form)
            if login is not None:
                logins += 1
                if logins > 1:
                    raise FlowError("login_rejected", "the login form came back after submitting it")
                fields += [("username", self.username), ("password", self.password)]
            else:
                fields.append(("decision", "allow"))
            action = self._local(self._absolute(target, form["action"] or target))
            if form["method"] == "POST":
                method, target, body = "POST", action, urlencode(fields).encode()
            else:
                sep = "&" if "?" in action else "?"
                method, target, body = "GET", f"{action}{sep}{urlencode(fields)}", None
        raise FlowError("protocol", f"no redirect to the redirect_uri after {MAX_STEPS} steps")

    async def login_form(self) -> LoginForm:
        """Start an authorization request and follow it to its login page, as a password sprayer does
        once per browser session: return the cookies, where the form posts to, and its hidden fields."""
        target, _, _ = self._authorization_request()
        jar = CookieJar()
        for _ in range(MAX_STEPS):
            resp = await self.send("GET", target, jar)
            if resp.status in REDIRECTS:
                target = self._local(self._location(resp, target))
                continue
            login, _ = self._forms(resp, "GET", target)
            if login is None or login["method"] != "POST":
                raise FlowError("protocol", f"no login form to post to at {target.split('?')[0]}")
            return jar, self._local(self._absolute(target, login["action"] or target)), hidden_fields(login)
        raise FlowError("protocol", f"no login page after {MAX_STEPS} redirects")

    async def token(self, params: dict) -> dict:
        resp = await self.send(
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


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean in ms of a list of durations in seconds (sorted here)."""
    seconds = sorted(seconds)
    return {
        "p50": 1000 * percentile(seconds, 50),
        "p90": 1000 * percentile(seconds, 90),
        "p99": 1000 * percentile(seconds, 99),
        "max": 1000 * (seconds[-1] if seconds else 0.0),
        "mean": 1000 * (sum(seconds) / len(seconds) if seconds else 0.0),
    }


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

    cpu0 = cpu_seconds()
    tasks = [asyncio.create_task(user(i)) for i in range(args.concurrency)]
    await asyncio.sleep(max(0.0, measure_to - loop.time()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    wall = loop.time() - start
    return {
        "flows": len(latencies),
        "duration_s": args.duration,
        "flows_per_s": len(latencies) / args.duration,
        "requests_per_flow": dict(sorted(steps_seen.items())),
        "latency_ms": latency_summary(latencies),
        "errors": errors,
        "warmup_errors": warmup_errors,
        "error_samples": error_samples,
        "loadgen_cpu_pct": 100 * (cpu_seconds() - cpu0) / wall,
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


def cpu_seconds() -> float:
    """CPU time this load generator has used (user + system), to report its share of its core."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def add_client_options(p: argparse.ArgumentParser) -> None:
    """The options `FlowClient.from_args` reads: the server, the client, the user and the connection."""
    shared = json.loads((Path(__file__).resolve().parent / "peers" / "clients.json").read_text())
    p.add_argument("--base", required=True, help="server base URL, e.g. http://127.0.0.1:8001")
    p.add_argument("--client-id", default="bench-web")
    p.add_argument("--secret", default=shared["clients"]["bench-web"]["secret"])
    p.add_argument("--username", default=shared["user"]["username"])
    p.add_argument("--password", default=shared["user"]["password"])
    p.add_argument("--redirect-uri", default=shared["redirect_uri"])
    p.add_argument("--scope", default="openid offline_access")
    p.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, seconds")
    p.add_argument("--source", help="local address to connect from, e.g. 127.0.0.2 (default: the kernel's choice)")
    p.add_argument("--forwarded-for", help="X-Forwarded-For sent with every request (a server behind a proxy)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["once", "tokens", "load"])
    add_client_options(p)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--count", type=int, default=64, help="tokens mode: number of flows")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=10.0)
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
    main()
