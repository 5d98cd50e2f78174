"""Authlib's Flask request adapters, without the full URL Werkzeug rebuilds on every request."""

from authlib.integrations.flask_oauth2 import ResourceProtector, token_authenticated
from authlib.integrations.flask_oauth2.requests import FlaskJsonRequest, FlaskOAuth2Request
from flask import g
from flask import request as flask_request
from werkzeug.datastructures import EnvironHeaders


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

    __slots__ = ("_request", "headers", "method", "url")

    def __init__(self, request):
        environ = request.environ
        self._request = request
        self.method = request.method
        self.url = f"{environ['wsgi.url_scheme']}://{request.host}{environ.get('PATH_INFO', '')}"
        self.headers = _Headers(environ)

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


class OAuth2Request(FlaskOAuth2Request):
    """Authlib's Flask request for the token, authorize and endpoint requests."""

    def __init__(self, request):
        super().__init__(_ShortUrl(request))
        # Where failed client authentications are counted (AUTHGATE_TRUSTED_PROXIES applied by ProxyFix).
        self.remote_addr: str | None = request.remote_addr


class JsonRequest(FlaskJsonRequest):
    """Authlib's Flask JSON request, for the userinfo endpoint's bearer token check."""

    def __init__(self, request):
        super().__init__(_ShortUrl(request))


class Protector(ResourceProtector):
    """Authlib's Flask resource protector, validating our JsonRequest."""

    # Authlib builds its FlaskJsonRequest inside `acquire_token` and offers no hook to make
    # another; this is its `acquire_token` with that one line changed (tests/unit pins the rest).

    def acquire_token(self, scopes=None, **kwargs):
        kwargs["scopes"] = scopes
        for claim in kwargs:
            if isinstance(kwargs[claim], str):
                kwargs[claim] = [kwargs[claim]]
        token = self.validate_request(request=JsonRequest(flask_request), **kwargs)
        token_authenticated.send(self, token=token)
        g.authlib_server_oauth2_token = token
        return token
