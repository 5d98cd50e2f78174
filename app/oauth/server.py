"""Authlib wiring: builds the app's authorization server and resource protector from the protocol modules."""

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from flask import g, json
from flask import request as flask_request
from werkzeug.exceptions import BadRequest

from app.models import Client
from app.oauth.client_auth import PrivateKeyJWT, ThrottledClientAuthentication, authenticate_client_secret_basic
from app.oauth.discovery import validated_metadata
from app.oauth.endpoints import AccessTokenValidator, EndSession, Introspection, Issuer, Revocation, Userinfo
from app.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    OpenIDCode,
    OpenIDRefresh,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from app.oauth.requests import (
    FRONT_REQUEST,
    FrontAnswer,
    FrontRequest,
    JsonRequest,
    OAuth2Request,
    Protector,
    memoise_transport_check,
)
from app.services import tokens
from app.services.client_cache import cached_client


def query_client(client_id: str) -> Client | None:
    """Called by Authlib to find a client: from this worker's short cache, else one indexed query."""
    return cached_client(client_id)


def save_token(token: dict, request) -> None:
    """Called by Authlib after generating a token; stores what needs storing, uncommitted."""
    tokens.save(
        token,
        request.client,
        request.user,
        code=request.authorization_code,
        previous=request.refresh_token,
    )


def generate_token(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
    """Called by Authlib to make the token response."""
    return tokens.generate(client, user, scope or "", include_refresh_token)


class Server(AuthorizationServer):
    """Authlib's Flask server, making our request adapters and throttling failed client authentication."""

    def __init__(self):
        super().__init__()
        self._client_auth_methods: dict = {}

    def register_client_auth_method(self, method, func):
        """Keep the method for `authenticate_client`, which builds each request's authentication with it."""
        self._client_auth_methods[method] = func

    def authenticate_client(self, request, methods, endpoint="token"):
        """Authlib's client authentication under the failure throttle: token, introspection and revocation."""
        # Only a request that came over HTTP has an address; the console's in-process code
        # redemption authenticates its own public client and is never throttled.
        ip = request.remote_addr if isinstance(request, OAuth2Request) else None
        return ThrottledClientAuthentication(self.query_client, self._client_auth_methods, ip)(
            request, methods, endpoint
        )

    def create_oauth2_request(self, request):
        """The request Authlib reads: the front's (app/oauth/front.py) when it passes one, else Flask's."""
        # Authlib refuses plain HTTP to a host that is not loopback, and a URL without a host
        # (Werkzeug gives an empty host for an invalid Host header), by raising its error from the
        # request's constructor, where none of its endpoints catch it: a bad request instead, JSON
        # on the machine endpoints and the error page on the hosted ones (app/errors.py).
        try:
            return OAuth2Request(request if isinstance(request, FrontRequest) else flask_request)
        except InsecureTransportError:
            raise BadRequest("OAuth 2 needs HTTPS (plain HTTP only to loopback) and a valid Host header.") from None

    def handle_response(self, status_code, payload, headers):
        """Authlib's Flask response; to the front, the same body and headers, which it sends itself."""
        if g.get(FRONT_REQUEST) is None:
            return super().handle_response(status_code, payload, headers)
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        return FrontAnswer(status_code, body.encode() if isinstance(body, str) else body, headers)

    def create_json_request(self, request):
        return JsonRequest(request if isinstance(request, FrontRequest) else flask_request)


def init_app(app) -> None:
    """Build this app's Authlib server; `app.extensions.authorization` proxies to it."""
    # The discovery document is validated here, once: a broken one stops the start.
    try:
        validated_metadata(app.config["AUTHGATE_ISSUER"])
    except ValueError as error:
        raise RuntimeError(f"The discovery document is invalid: {error}") from error

    memoise_transport_check()
    authorization = Server()
    app.extensions["authgate_authorization"] = authorization
    authorization.init_app(app, query_client=query_client, save_token=save_token)
    # Authlib calls any callable with these arguments; the stubs ask for its BearerTokenGenerator.
    authorization.register_token_generator("default", generate_token)  # type: ignore[arg-type]
    # Replaces Authlib's own, which fails with a 500 on a malformed Basic header.
    authorization.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
    authorization.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    authorization.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDCode()])
    authorization.register_grant(RefreshTokenGrant, [OpenIDRefresh()])
    authorization.register_grant(ClientCredentialsGrant)
    authorization.register_endpoint(Introspection)
    authorization.register_endpoint(Revocation)
    authorization.register_endpoint(EndSession)
    authorization.register_extension(Issuer())
    protector = Protector()
    protector.register_token_validator(AccessTokenValidator())
    # UserInfoEndpoint is an endpoint to Authlib; its stub does not derive it from Endpoint.
    authorization.register_endpoint(Userinfo(resource_protector=protector))  # type: ignore[arg-type]
