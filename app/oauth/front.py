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

from app import security_headers
from app.oauth.params import malformed
from app.oauth.requests import FRONT_REQUEST, FrontRequest
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
    # Authlib's userinfo endpoint asks the resource protector for the token without the request.
    setattr(g, FRONT_REQUEST, request)
    return server.create_endpoint_response("userinfo", request)


class Front:
    """WSGI middleware directly in front of Flask's `wsgi_app`."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self.max_body = min(MAX_BODY, app.config.get("MAX_CONTENT_LENGTH") or MAX_BODY)
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
        body = environ["wsgi.input"].read(int(length))
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
            try:
                response = respond(app.extensions["authgate_authorization"], request)
            except Exception as error:  # answered below by Flask's handlers, as in the Flask path
                failure = error
            else:
                response = security_headers(response)
                # Flask-Login's after-request hook reads the session on every request, so Flask
                # adds this to each of its responses (Flask >= 3.1.3); the front's say the same.
                response.vary.add("Cookie")
        if failure is not None:
            with app.request_context(environ):
                response = app.finalize_request(app.handle_user_exception(failure))
        return response(environ, start_response)
