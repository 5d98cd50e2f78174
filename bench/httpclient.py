"""A small asyncio HTTP/1.1 client for the benchmark's scripted flows (standard library only).

One `Connection` is one keep-alive TCP connection to 127.0.0.1:port; it reconnects when the
server closes it (gunicorn's sync worker closes after every response). `CookieJar` keeps the
cookies of one user agent, honouring Path, Max-Age and Expires. Fast enough to drive a
server pinned to the other core without being the bottleneck (the harness reports the load
generator's CPU use so that can be checked).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit


class HTTPError(Exception):
    """A transport-level failure: connection refused/reset, truncated response, timeout."""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        import json

        return json.loads(self.body)


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 section 2.3.1: form-encode id and secret, then Base64."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class Connection:
    def __init__(self, host: str, port: int, timeout: float = 60.0, source: str | None = None):
        self.host, self.port, self.timeout = host, port, timeout
        # The local address to connect from: any 127.0.0.x is loopback on Linux, so a benchmark can
        # make two clients on one machine look like two addresses to the server (scenario 8).
        self.source = source
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.requests_on_connection = 0
        self.connects = 0

    async def _connect(self):
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host, self.port, limit=1 << 20, local_addr=(self.source, 0) if self.source else None
                ),
                self.timeout,
            )
        except (TimeoutError, OSError) as exc:
            raise HTTPError(f"connect: {exc!r}") from exc
        self.requests_on_connection = 0
        self.connects += 1

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> Response:
        reused = self.writer is not None
        try:
            return await self._request(method, target, headers, body)
        except _StaleConnection:
            # The server closed an idle keep-alive connection before reading our request:
            # nothing was processed, so sending it again on a new connection is safe.
            self.close()
            if not reused:
                raise HTTPError("connection closed before any response") from None
            return await self._request(method, target, headers, body)

    async def _request(self, method, target, headers, body) -> Response:
        if self.writer is None:
            await self._connect()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}")
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        fresh = self.requests_on_connection == 0
        try:
            self.writer.write(payload)
            await self.writer.drain()
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), self.timeout)
        except asyncio.IncompleteReadError as exc:
            self.close()
            if not exc.partial and not fresh:
                raise _StaleConnection() from None
            raise HTTPError("connection closed while reading the response head") from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            self.close()
            if not fresh:
                raise _StaleConnection() from None
            raise HTTPError(f"socket: {exc!r}") from exc
        except (TimeoutError, OSError, asyncio.LimitOverrunError) as exc:
            self.close()
            raise HTTPError(f"socket: {exc!r}") from exc
        self.requests_on_connection += 1

        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        version, status = status_line.split(" ", 2)[:2]
        status = int(status)
        parsed = []
        for line in header_lines:
            key, _, value = line.partition(":")
            parsed.append((key.strip().lower(), value.strip()))
        resp_headers = dict(parsed)
        try:
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                data = b""
            elif "chunked" in resp_headers.get("transfer-encoding", "").lower():
                data = await asyncio.wait_for(self._read_chunked(), self.timeout)
            elif "content-length" in resp_headers:
                data = await asyncio.wait_for(
                    self.reader.readexactly(int(resp_headers["content-length"])), self.timeout
                )
            else:
                data = await asyncio.wait_for(self.reader.read(), self.timeout)
                self.close()
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            self.close()
            raise HTTPError(f"body: {exc!r}") from exc
        connection = resp_headers.get("connection", "").lower()
        if connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive"):
            self.close()
        return Response(status, parsed, data)

    async def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # trailers end with an empty line
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


class _StaleConnection(Exception):
    pass


@dataclass
class CookieJar:
    """The cookies of one user agent on one host (name -> (value, path, expires))."""

    cookies: dict[tuple[str, str], tuple[str, float | None]] = field(default_factory=dict)

    def update(self, response: Response, request_path: str):
        for raw in response.header_all("set-cookie"):
            self._set(raw, request_path)

    def _set(self, raw: str, request_path: str):
        first, *attrs = raw.split(";")
        name, _, value = first.strip().partition("=")
        path = None
        expires: float | None = None
        for attr in attrs:
            key, _, val = attr.strip().partition("=")
            key = key.lower()
            if key == "path" and val.startswith("/"):
                path = val
            elif key == "max-age":
                with contextlib.suppress(ValueError):
                    expires = time.time() + int(val)
            elif key == "expires" and expires is None:
                with contextlib.suppress(TypeError, ValueError):
                    expires = parsedate_to_datetime(val).timestamp()
        if path is None:  # RFC 6265 default-path
            base = request_path.split("?", 1)[0]
            path = base[: base.rfind("/")] or "/"
        if expires is not None and expires <= time.time():
            self.cookies.pop((name, path), None)
        else:
            self.cookies[(name, path)] = (value, expires)

    def header(self, request_path: str) -> str | None:
        path = request_path.split("?", 1)[0]
        now = time.time()
        pairs = []
        # longest path first, as browsers do
        for (name, cpath), (value, expires) in sorted(self.cookies.items(), key=lambda kv: -len(kv[0][1])):
            if expires is not None and expires <= now:
                continue
            if path == cpath or (path.startswith(cpath) and (cpath.endswith("/") or path[len(cpath)] == "/")):
                pairs.append(f"{name}={value}")
        return "; ".join(pairs) or None


def split_target(url: str, base_netloc: str) -> str:
    """Path and query of `url` (absolute or relative); refuse to leave the server under test."""
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != base_netloc:
        raise ValueError(f"redirect leaves the server under test: {url}")
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
