"""Faults answered in the caller's language, request ids, and logs an operator can read.

Machine endpoints (token, introspection, revocation, userinfo, JWKS, discovery, health) always
answer JSON in the RFC 6749 error shape; pages answer the HTML error page. The database being
unreachable is 503 `temporarily_unavailable` with `Retry-After`; anything unexpected is 500
`server_error`. Flask's own HTML 500 page is never sent.

Every response carries `X-Request-Id` (a sane incoming one from a proxy is kept). A failed
request is logged in one line with that id; the full traceback of a given fault at most once a
minute, so an outage does not fill the disk. Log lines name the exception and its first line,
never SQL parameters (the engine hides them), tokens, secrets or passwords.
"""

import itertools
import logging
import re
import secrets
import threading
import time
import traceback

import sqlalchemy as sa
from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("authgate.request")

REQUEST_ID_HEADER = "X-Request-Id"
_ENVIRON_KEY = "authgate.request_id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
RETRY_AFTER = 5
TRACEBACK_EVERY = 60.0
# Paths whose callers are programs: they get JSON, never a page.
MACHINE_PATHS = (
    "/oauth2/token",
    "/oauth2/introspect",
    "/oauth2/revoke",
    "/oauth2/userinfo",
    "/oauth2/jwks",
    "/.well-known/",
    "/healthz",
    "/readyz",
)
# What a 4xx from Werkzeug (routing, method, size) is called in RFC 6749 terms.
_HTTP_ERROR_CODES = {401: "invalid_client", 404: "not_found"}


class RequestIds:
    """WSGI middleware, outermost: give the request an id and send it back on every response."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        # Unique, not secret: a random prefix per process and a counter (no system call per request).
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)

    def __call__(self, environ, start_response):
        incoming = environ.get("HTTP_X_REQUEST_ID")
        if incoming is not None and _SANE_ID.match(incoming):
            request_id = incoming
        else:
            request_id = f"{self._prefix}{next(self._counter):08x}"
        environ[_ENVIRON_KEY] = request_id
        header = (REQUEST_ID_HEADER, request_id)

        def start(status, headers, exc_info=None):
            headers.append(header)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def request_id() -> str:
    return request.environ.get(_ENVIRON_KEY, "-")


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PATHS)


def database_unavailable(error: BaseException) -> bool:
    """The database cannot be reached or cannot answer now; worth trying again shortly."""
    return isinstance(
        error,
        sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.DisconnectionError | sa.exc.TimeoutError,
    )


def describe(error: BaseException) -> str:
    """The exception's class and the first line of its message (the driver's, for database errors)."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class TracebackLimiter:
    """Remember when each distinct fault (its type and where it was raised) last had its traceback logged."""

    def __init__(self, every: float = TRACEBACK_EVERY):
        self.every = every
        self._last: dict[tuple, float] = {}
        self._lock = threading.Lock()

    def due(self, error: BaseException) -> bool:
        frames = traceback.extract_tb(error.__traceback__)
        where = (frames[-1].filename, frames[-1].lineno) if frames else ("", 0)
        key = (type(error).__name__, *where)
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, float("-inf")) < self.every:
                return False
            if len(self._last) > 1000:
                self._last.clear()
            self._last[key] = now
            return True


def _json_error(status: int, error: str, description: str, retry_after: int | None = None):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _page(status: int, title: str, message: str, retry_after: int | None = None):
    response = render_template("error.html", title=title, message=message), status
    if retry_after:
        return (*response, {"Retry-After": str(retry_after)})
    return response


def _http_error(error: HTTPException):
    status = error.code or 500
    if is_machine_path(request.path):
        code = _HTTP_ERROR_CODES.get(status, "invalid_request" if status < 500 else "server_error")
        return _json_error(status, code, error.description or error.name)
    return _page(status, error.name, error.description or error.name)


def init_app(app: Flask) -> None:
    """Install the request ids and the error handlers on `app`."""
    limiter = TracebackLimiter()
    app.wsgi_app = RequestIds(app.wsgi_app)  # type: ignore[method-assign]

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return _http_error(error)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return _http_error(error)
        unavailable = database_unavailable(error)
        status = 503 if unavailable else 500
        log.error(
            "request_id=%s %s %s -> %d %s",
            request_id(), request.method, request.path, status, describe(error),
            exc_info=error if limiter.due(error) else None,
        )  # fmt: skip
        if unavailable:
            if is_machine_path(request.path):
                return _json_error(
                    503, "temporarily_unavailable", "The server cannot reach its database; try again shortly.",
                    RETRY_AFTER,
                )  # fmt: skip
            return _page(
                503, "AuthGate is briefly unavailable",
                "The server cannot reach its database just now. Wait a few seconds and try again.", RETRY_AFTER,
            )  # fmt: skip
        if is_machine_path(request.path):
            return _json_error(500, "server_error", f"The server failed to answer (request id {request_id()}).")
        return _page(
            500, "Something went wrong",
            f"AuthGate could not finish this request. If it keeps happening, give the administrators "
            f"this request id: {request_id()}.",
        )  # fmt: skip
