"""Answer the protocol's hot requests before Flask: token, introspection, userinfo of a plain shape.

Flask's request machinery (routing, the request object, hooks, the response object) costs more
than Authlib's whole decision on a client_credentials request. This WSGI callable sits between
the proxy handling (ProxyFix, when AUTHGATE_TRUSTED_PROXIES is set) and Flask and takes only:

    POST /oauth2/token        form body, grant_type client_credentials or refresh_token
    POST /oauth2/introspect   form body
    GET|POST /oauth2/userinfo with an Authorization header and no body

and of those only requests of a plain shape: no query string, no cookie, a Content-Type of
`application/x-www-form-urlencoded` (charset UTF-8 at most), a Content-Length of at most
MAX_BODY (and of MAX_CONTENT_LENGTH), not chunked, an ASCII body whose parameters decode as
UTF-8 and that `params.malformed` does not refuse, and a Host Flask trusts. Everything else,
every other path and method included, goes to Flask untouched (a body already read is put back).

What it may do: read the body and parse it as Werkzeug would; build the `FrontRequest` the
Authlib adapters read; open an application context (the database session, `g`) and call the
very server Flask's views call (`create_token_response`, `create_endpoint_response`), in one
unit of work committed as the views' `committed` does; start the housekeeper as Flask's
before-request hook does; add the app's security headers. An exception is answered by Flask's
own error handlers in a request context of the same environ (JSON error, log line, 503 when
the database is away), so request ids, logs and bodies are the Flask path's.

What it may not do: decide anything about the protocol. Client authentication (and its
failure throttle), grant and scope checks, token lookups and every error answer are Authlib's
and our hooks', reached the same way from both paths; the front never answers a request
itself, and a shape it does not take is never refused here, only handed to Flask.
tests/integration/test_front_equivalence.py sends each shape through both paths.
"""

from io import BytesIO
from urllib.parse import parse_qsl

from flask import Flask, g
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import SecurityError
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from app import security_headers
from app.oauth.params import malformed
from app.oauth.requests import FRONT_REQUEST, FrontAnswer, FrontRequest
from app.services import committed

# Longer bodies (no token request needs one) go to Flask.
MAX_BODY = 16 * 1024
FORM_TYPES = frozenset(
    (
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "application/x-www-form-urlencoded;charset=utf-8",
    )
)
TOKEN_GRANTS = frozenset(("client_credentials", "refresh_token"))


@committed
def _token(server, request):
    return server.create_token_response(request)


@committed
def _introspection(server, request):
    return server.create_endpoint_response("introspection", request)


def _userinfo(server, request):
    return server.create_endpoint_response("userinfo", request)


def _finished(response: Response) -> Response:
    """What Flask does to a view's response on its way out: the app's after-request headers."""
    response = security_headers(response)
    # Flask-Login's after-request hook reads the session on every request, so Flask adds this to
    # each of its responses (Flask >= 3.1.3); the front's say the same.
    response.vary.add("Cookie")
    return response


class _Headers:
    """The headers Flask sends with a body and Authlib's headers: made by Werkzeug once per header list."""

    MAX_ENTRIES = 256

    def __init__(self):
        self._made: dict[tuple, tuple[list, int]] = {}

    def __call__(self, headers: list, body: bytes) -> list:
        key = tuple(headers)
        made = self._made.get(key)
        if made is None:
            # A Response of the same headers, finished as Flask finishes it; Content-Length is
            # the one header that depends on the body.
            template = list(_finished(Response(b"", headers=headers)).headers.items())
            index = next(i for i, (name, _) in enumerate(template) if name == "Content-Length")
            if len(self._made) >= self.MAX_ENTRIES:  # error descriptions vary: keep the cache bounded
                self._made.clear()
            made = self._made[key] = (template, index)
        template, index = made
        sent = list(template)
        sent[index] = ("Content-Length", str(len(body)))
        return sent


class Front:
    """WSGI middleware directly in front of Flask's `wsgi_app`."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self.max_body = min(MAX_BODY, app.config.get("MAX_CONTENT_LENGTH") or MAX_BODY)
        self._headers = _Headers()
        self._routes = {
            ("POST", "/oauth2/token"): self._token,
            ("POST", "/oauth2/introspect"): self._introspection,
            ("GET", "/oauth2/userinfo"): self._userinfo,
            ("POST", "/oauth2/userinfo"): self._userinfo,
        }

    def __call__(self, environ, start_response):
        route = self._routes.get((environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")))
        if route is None or environ.get("QUERY_STRING") or "HTTP_COOKIE" in environ:
            return self.wsgi_app(environ, start_response)
        return route(environ, start_response)

    def _token(self, environ, start_response):
        form = self._form(environ)
        if form is None or form.get("grant_type") not in TOKEN_GRANTS:
            return self.wsgi_app(environ, start_response)
        return self._answer(environ, start_response, form, _token)

    def _introspection(self, environ, start_response):
        form = self._form(environ)
        if form is None:
            return self.wsgi_app(environ, start_response)
        return self._answer(environ, start_response, form, _introspection)

    def _userinfo(self, environ, start_response):
        if (
            "HTTP_AUTHORIZATION" not in environ
            or environ.get("CONTENT_LENGTH") not in (None, "", "0")
            or "HTTP_TRANSFER_ENCODING" in environ
        ):
            return self.wsgi_app(environ, start_response)
        return self._answer(environ, start_response, ImmutableMultiDict(), _userinfo)

    def _form(self, environ) -> ImmutableMultiDict | None:
        """The body's parameters as Werkzeug parses them; None for a body of another shape."""
        if environ.get("CONTENT_TYPE", "").lower() not in FORM_TYPES or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        length = environ.get("CONTENT_LENGTH", "")
        if not (length.isascii() and length.isdigit()) or int(length) > self.max_body:
            return None
        try:
            body = environ["wsgi.input"].read(int(length))
        except OSError:  # the client went away: Werkzeug's short-body answer, from Flask
            body = b""
        # Flask reads the body again if the request goes there after all.
        environ["wsgi.input"] = BytesIO(body)
        if len(body) != int(length) or not body.isascii():
            return None
        try:
            # Werkzeug's own call (formparser's urlencoded parser), except that a percent-escape
            # which is not UTF-8 sends the request to Flask instead of being kept quoted.
            form = ImmutableMultiDict(parse_qsl(body.decode(), keep_blank_values=True, errors="strict"))
        except UnicodeDecodeError:
            return None
        return None if malformed(form, once=form) is not None else form

    def _answer(self, environ, start_response, form, respond):
        app = self.app
        try:
            request = FrontRequest(environ, form, app.config["TRUSTED_HOSTS"])
        except SecurityError:
            return self.wsgi_app(environ, start_response)
        failure = None
        with app.app_context():
            state = app.extensions["authgate"]
            if state.housekeeper is not None:
                state.housekeeper.start()
            # The server answers with a FrontAnswer, and the resource protector (which Authlib's
            # userinfo endpoint calls without the request) reads this request, not Flask's.
            setattr(g, FRONT_REQUEST, request)
            try:
                response = respond(app.extensions["authgate_authorization"], request)
                if not isinstance(response, FrontAnswer):
                    raise TypeError(f"The protocol answered {type(response).__name__}, not a response.")
                if response.status < 200 or response.status in (204, 304):
                    # Werkzeug drops the body's length from these; let it.
                    return _finished(Response(response.body, status=response.status, headers=response.headers))(
                        environ, start_response
                    )
                # Werkzeug refuses a header value it cannot send (a newline): a fault, as in Flask.
                headers = self._headers(response.headers, response.body)
            except Exception as error:  # answered below by Flask's handlers, as in the Flask path
                failure = error
        if failure is not None:
            with app.request_context(environ):
                return app.finalize_request(app.handle_user_exception(failure))(environ, start_response)
        start_response(f"{response.status} {HTTP_STATUS_CODES.get(response.status, 'Unknown').upper()}", headers)
        return [response.body]
