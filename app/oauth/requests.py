"""Authlib's Flask request adapters, without the full URL Werkzeug rebuilds on every request.

They adapt either a Flask request or a `FrontRequest`: the same request as app/oauth/front.py
reads it from the WSGI environ, before Flask, with the form already parsed.
"""

import functools
import os

from authlib.common.security import is_secure_transport
from authlib.integrations.flask_oauth2 import ResourceProtector, token_authenticated
from authlib.integrations.flask_oauth2.requests import FlaskJsonRequest, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import errors as authlib_errors
from flask import g
from flask import request as flask_request
from werkzeug.datastructures import CombinedMultiDict, EnvironHeaders, ImmutableMultiDict
from werkzeug.wsgi import get_host

# Where the front leaves its request for the resource protector, which Authlib calls without one.
FRONT_REQUEST = "authgate_front_request"
_NO_ARGS: ImmutableMultiDict = ImmutableMultiDict()


class _Headers(EnvironHeaders):
    """The request's headers, true without counting them."""

    # Never empty (a request names its Host); Authlib's `headers or {}` would otherwise walk the
    # whole WSGI environ to count them.

    def __bool__(self) -> bool:
        return True


class _ShortUrl:
    """A Flask request as Authlib's Flask adapters read it, with `url` cut to scheme, host and path."""

    # That is all Authlib uses the URL for (refusing plain HTTP to a non-loopback host), while
    # Werkzeug's `request.url` rebuilds the full IRI, query included, on every request.

    __slots__ = ("_request", "headers", "method", "remote_addr", "url")

    def __init__(self, request):
        environ = request.environ
        self._request = request
        self.method = request.method
        self.url = f"{environ['wsgi.url_scheme']}://{request.host}{environ.get('PATH_INFO', '')}"
        self.headers = _Headers(environ)
        self.remote_addr = request.remote_addr

    @property
    def values(self):
        return self._request.values

    @property
    def args(self):
        return self._request.args

    @property
    def form(self):
        return self._request.form

    def get_json(self, *args, **kwargs):
        return self._request.get_json(*args, **kwargs)


class FrontRequest:
    """A request without a query string or cookies, read from its WSGI environ as Flask would read it.

    `form` is the body the front parsed (empty for a GET); `host` is Werkzeug's own reading of
    the Host header (empty when invalid, SecurityError when not one of `trusted_hosts`), so the
    URL Authlib checks is the one the Flask path gives it.
    """

    __slots__ = ("args", "environ", "form", "headers", "method", "remote_addr", "url", "values")

    def __init__(self, environ: dict, form: ImmutableMultiDict, trusted_hosts=None):
        self.environ = environ
        self.method = environ["REQUEST_METHOD"]
        self.url = f"{environ['wsgi.url_scheme']}://{get_host(environ, trusted_hosts)}{environ.get('PATH_INFO', '')}"
        self.headers = _Headers(environ)
        self.remote_addr = environ.get("REMOTE_ADDR")
        self.args = _NO_ARGS
        self.form = form
        # Werkzeug's `values`: the query's arguments, and the form except on a GET.
        self.values = CombinedMultiDict([_NO_ARGS] if self.method == "GET" else [_NO_ARGS, form])


class FrontAnswer:
    """Authlib's answer to a front request (status, body, headers), not yet made a Flask Response."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: list):
        self.status, self.body, self.headers = status, body, headers


class OAuth2Request(FlaskOAuth2Request):
    """Authlib's Flask request for the token, authorize and endpoint requests."""

    def __init__(self, request):
        super().__init__(request if isinstance(request, FrontRequest) else _ShortUrl(request))
        # Where failed client authentications are counted (AUTHGATE_TRUSTED_PROXIES applied by ProxyFix).
        self.remote_addr: str | None = self._request.remote_addr


class JsonRequest(FlaskJsonRequest):
    """Authlib's Flask JSON request, for the userinfo endpoint's bearer token check."""

    def __init__(self, request):
        super().__init__(request if isinstance(request, FrontRequest) else _ShortUrl(request))


class Protector(ResourceProtector):
    """Authlib's Flask resource protector, validating our JsonRequest."""

    # Authlib builds its FlaskJsonRequest inside `acquire_token` and offers no hook to make
    # another; this is its `acquire_token` with that one line changed (tests/unit pins the rest).

    def acquire_token(self, scopes=None, **kwargs):
        kwargs["scopes"] = scopes
        for claim in kwargs:
            if isinstance(kwargs[claim], str):
                kwargs[claim] = [kwargs[claim]]
        token = self.validate_request(request=JsonRequest(g.get(FRONT_REQUEST) or flask_request), **kwargs)
        token_authenticated.send(self, token=token)
        g.authlib_server_oauth2_token = token
        return token


# Authlib's check of a request's URL (HTTPS, or plain HTTP to loopback: InsecureTransportError)
# parses it and the host's address every time; our URLs are scheme, host and path, a handful of
# values per deployment. Hostile Host headers can make more, hence the bound.
_secure_transport = functools.lru_cache(maxsize=512)(is_secure_transport)


def _memoised_secure_transport(uri: str) -> bool:
    """Authlib's `is_secure_transport`, remembered per URL (the environment variable is read each time, as it does)."""
    if os.getenv("AUTHLIB_INSECURE_TRANSPORT"):
        return True
    return _secure_transport(uri)


def memoise_transport_check() -> None:
    """Make InsecureTransportError.check use the memoised check (it reads the module's global; tests/unit pins that)."""
    authlib_errors.is_secure_transport = _memoised_secure_transport  # type: ignore[attr-defined]
