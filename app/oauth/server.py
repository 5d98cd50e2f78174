"""Authlib wiring: grants, client authentication, endpoints. The rules live in app/services/tokens.py."""

import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, token_authenticated
from authlib.integrations.flask_oauth2.requests import (
    FlaskJsonPayload,
    FlaskJsonRequest,
    FlaskOAuth2Payload,
    FlaskOAuth2Request,
)
from authlib.oauth2.rfc6749 import OAuth2Request as BaseOAuth2Request
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnsupportedTokenTypeError,
)
from authlib.oauth2.rfc6749.requests import JsonRequest as BaseJsonRequest
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import UserInfo, UserInfoEndpoint
from authlib.oidc.core import grants as oidc_grants
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import current_app, g
from flask import request as flask_request
from joserfc.jwk import KeySet

from app.extensions import db
from app.models import AuthorizationCode, Client, User
from app.services import sessions, tokens
from app.services.client_cache import cached_client
from app.services.keys import keyring

ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
# Algorithms a client may sign a private_key_jwt assertion with.
ASSERTION_ALGS = ["RS256", "PS256", "ES256", "EdDSA"]


def issuer() -> str:
    return current_app.config["AUTHGATE_ISSUER"]


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


def _enabled_user(user_id: int, client_pk: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or not user.enabled or user.client_pk != client_pk:
        raise InvalidGrantError("The user no longer exists or is disabled.")
    return user


# --- grants -----------------------------------------------------------------------------


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def generate_authorization_code(self):
        return tokens.new_code()

    def save_authorization_code(self, code, request):
        payload = request.payload.data
        tokens.store_code(
            code,
            request.client,
            request.user,
            # Bound only when sent: RFC 6749 4.1.3 asks for it at the token endpoint only then.
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope,
            nonce=payload.get("nonce"),
            code_challenge=payload.get("code_challenge"),
            code_challenge_method=payload.get("code_challenge_method"),
            session=getattr(request, "browser_session", None),
        )

    def query_authorization_code(self, code, client):
        row = tokens.find_code(code, client)
        if row is None:
            return None
        if row.used_at is not None:
            tokens.revoke_replayed(row, client)  # committed with the error response
            return None
        return None if tokens.is_expired(row) else row

    def delete_authorization_code(self, authorization_code):
        if not tokens.consume_code(authorization_code):
            raise InvalidGrantError("The authorization code was already used.")

    def authenticate_user(self, authorization_code):
        return _enabled_user(authorization_code.user_id, authorization_code.client_pk)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        row = tokens.find_refresh_token(refresh_token, self.request.client)
        if row is not None and tokens.is_rotated(row):
            tokens.report_reuse(row, self.request.client)  # committed with the error response
            return None
        return row

    def authenticate_user(self, refresh_token):
        return _enabled_user(refresh_token.user_id, refresh_token.client_pk)

    def save_token(self, token):
        """Rotate the presented token before its successor is stored; a lost race is a reuse."""
        if not tokens.rotate_refresh_token(self.request.refresh_token):
            tokens.report_reuse(self.request.refresh_token, self.request.client)
            raise InvalidGrantError("The refresh token was already used.")
        super().save_token(token)

    def revoke_old_credential(self, refresh_token):
        """Called by Authlib after saving the new token: the old one was rotated in `save_token`."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_requested_scope(self):
        scope = self.request.client.get_allowed_scope(self.request.payload.scope)
        if scope is None:
            raise InvalidScopeError("The client may not ask for that scope.")
        self.request.scope = scope

    def create_token_response(self):
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only; required for public clients and clients that ask for it."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        client = grant.request.client
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if not challenge and (client.is_public or client.require_pkce):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if challenge and method != "S256":
            raise InvalidRequestError("code_challenge_method must be S256; 'plain' is not supported.")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDCode(oidc_grants.OpenIDCode):
    """Adds the ID token to the code exchange."""

    NONCE_USED = sa.select(
        sa.exists().where(
            AuthorizationCode.client_pk == sa.bindparam("client_pk"), AuthorizationCode.nonce == sa.bindparam("nonce")
        )
    )

    def exists_nonce(self, nonce, request):
        # Authlib asks more than once per authorization request; the answer cannot change within one.
        memo = g.setdefault("authgate_nonces", {})
        key = (request.client.id, nonce)
        if key not in memo:
            memo[key] = bool(db.session.scalar(self.NONCE_USED, {"client_pk": key[0], "nonce": nonce}))
        return memo[key]

    def resolve_client_private_key(self, client):
        return keyring().signing_key(client.signing_alg).key

    def get_client_claims(self, client):
        return {"iss": issuer(), "aud": client.client_id}

    def generate_user_info(self, user, scope):
        return UserInfo(tokens.user_claims(user, scope))

    def encode_id_token(self, token, request):
        source = request.authorization_code or request.refresh_token
        sign_in = tokens.sign_in_of(source)
        if request.authorization_code is None:
            # A refreshed ID token repeats the original sign-in but carries no nonce.
            sign_in.nonce = None
        return tokens.id_token(request.client, request.user, token["scope"], sign_in, token.get("access_token"))


class OpenIDRefresh(OpenIDCode):
    """Adds a fresh ID token to a refresh response when the grant includes openid."""

    def __call__(self, grant):
        grant.register_hook("after_create_token_response", self.process_token)


# --- client authentication ----------------------------------------------------------------


class PrivateKeyJWT(JWTBearerClientAssertion):
    """private_key_jwt: the client signs an assertion with a key it registered."""

    CLIENT_AUTH_METHOD = "private_key_jwt"
    MAX_LIFETIME = 3600

    def get_audiences(self):
        base = issuer()
        return [base, f"{base}/oauth2/token", f"{base}/oauth2/introspect", f"{base}/oauth2/revoke"]

    def resolve_client_public_key(self, client):
        if not client.jwks:
            raise InvalidRequestError("The client has no registered keys.")
        return KeySet.import_key_set(client.jwks)

    def process_assertion_claims(self, assertion, resolve_key):
        claims = super().process_assertion_claims(assertion, resolve_key)
        if claims["exp"] - time.time() > self.MAX_LIFETIME:
            raise InvalidClientError(description="The assertion must expire within an hour.")
        return claims

    def validate_jti(self, claims, jti):
        """Refuse a replayed assertion; remember each jti until the assertion expires."""
        key = f"assertion:{claims['sub']}:{jti}"[:128]
        expires = datetime.fromtimestamp(claims["exp"], UTC) + timedelta(seconds=self.leeway)
        # Insert-or-ignore: of two requests with one assertion, only the first gets True. The
        # endpoint commits also when it answers with an error, so a failing request keeps it used.
        return tokens.deny(key, expires)


# --- endpoints ------------------------------------------------------------------------------


class TokenView:
    """Adapts tokens.TokenInfo to what Authlib's endpoints ask of a token."""

    def __init__(self, info: tokens.TokenInfo):
        self.info = info
        self.scope = info.scope
        self.client_pk = info.client_pk

    def is_expired(self):
        return False  # tokens.inspect returns only active tokens

    def is_revoked(self):
        return False

    def get_scope(self):
        return self.info.scope

    def get_client(self):
        return cached_client(self.info.client_id)

    def get_user(self):
        return self.info.user

    def check_client(self, client):
        return self.info.client_pk == client.id


class AccessTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        info = tokens.inspect(token_string)
        if info is None or info.kind != "access_token" or info.user is None:
            return None
        return TokenView(info)


class Userinfo(UserInfoEndpoint):
    def generate_user_info(self, user, scope):
        return UserInfo(tokens.user_claims(user, scope))

    def get_issuer(self):
        return issuer()


class UnsupportedTokenType(UnsupportedTokenTypeError):
    # RFC 7009 returns it as an RFC 6749 error response: 400, not Authlib's 401.
    status_code = 400


def check_token_params(request) -> None:
    if not request.form.get("token"):
        raise InvalidRequestError("Missing 'token' in request.")
    hint = request.form.get("token_type_hint")
    if hint and hint not in ("access_token", "refresh_token"):
        raise UnsupportedTokenType(f"token_type_hint must be access_token or refresh_token, not {hint!r}.")


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def check_params(self, request, client):
        check_token_params(request)

    def query_token(self, token_string, token_type_hint):
        info = tokens.inspect(token_string, token_type_hint)
        return TokenView(info) if info else None

    def check_permission(self, token, client, request):
        # A client sees only its own tokens; anything else is simply not active.
        return token.check_client(client)

    def introspect_token(self, token):
        return token.info.introspection()


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def check_params(self, request, client):
        check_token_params(request)

    def authenticate_token(self, request, client):
        self.check_params(request, client)
        return request.form["token"]

    def revoke_token(self, token, request):
        tokens.revoke(token, request.client)


class EndSession(EndSessionEndpoint):
    def get_server_jwks(self):
        return KeySet.import_key_set({"keys": [k.public_jwk for k in keyring().published()]})

    def _validate_id_token_hint(self, id_token_hint):
        claims = super()._validate_id_token_hint(id_token_hint)
        if claims.get("iss") != issuer():
            raise InvalidRequestError("The id_token_hint was not issued here.")
        return claims

    def get_algorithms(self):
        return ["RS256", "ES256", "EdDSA"]

    def is_post_logout_redirect_uri_legitimate(self, request, post_logout_redirect_uri, client, logout_hint):
        # Without an id_token_hint the user confirmed on our page (a CSRF-checked form).
        return bool(g.get("logout_confirmed"))

    def end_session(self, end_session_request):
        from app.oauth import browser

        client = end_session_request.client
        if client is None:
            sessions.end(browser.forget_all_logins())
            return
        ended = [browser.forget_login(client)]
        hinted = (end_session_request.id_token_claims or {}).get("sid")
        if hinted:
            ended.append(hinted)
        sessions.end([sid for sid in ended if sid], client)


class Issuer(IssuerParameter):
    def get_issuer(self):
        return issuer()


def _short_uri(request) -> str:
    """Scheme, host and path: all Authlib uses the URL for (refusing plain HTTP to a non-loopback
    host). Werkzeug's `request.url` rebuilds the full IRI with the query, on every request."""
    environ = request.environ
    return f"{environ['wsgi.url_scheme']}://{request.host}{environ.get('PATH_INFO', '')}"


class OAuth2Request(FlaskOAuth2Request):
    """Authlib's Flask request, built with less work (see `_short_uri`)."""

    def __init__(self, request):
        BaseOAuth2Request.__init__(self, method=request.method, uri=_short_uri(request))
        # Set afterwards: Authlib's `headers or {}` would count the headers, walking the whole environ.
        self.headers = request.headers
        self._request = request
        self.payload = FlaskOAuth2Payload(request)


class JsonRequest(FlaskJsonRequest):
    """The same for the userinfo endpoint's bearer token check."""

    def __init__(self, request):
        BaseJsonRequest.__init__(self, request.method, _short_uri(request))
        self.headers = request.headers
        self.payload = FlaskJsonPayload(request)


class Protector(ResourceProtector):
    def acquire_token(self, scopes=None, **kwargs):
        """Authlib's `acquire_token`, with the cheaper request object."""
        kwargs["scopes"] = [scopes] if isinstance(scopes, str) else scopes
        token = self.validate_request(request=JsonRequest(flask_request), **kwargs)
        token_authenticated.send(self, token=token)
        g.authlib_server_oauth2_token = token
        return token


class Server(AuthorizationServer):
    def create_oauth2_request(self, request):
        return OAuth2Request(flask_request)


def init_app(app) -> None:
    """Build this app's Authlib server; `app.extensions.authorization` proxies to it."""
    authorization = Server()
    app.extensions["authgate_authorization"] = authorization
    authorization.init_app(app, query_client=query_client, save_token=save_token)
    authorization.register_token_generator("default", generate_token)
    authorization.register_client_auth_method("private_key_jwt", PrivateKeyJWT())
    authorization.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDCode()])
    authorization.register_grant(RefreshTokenGrant, [OpenIDRefresh()])
    authorization.register_grant(ClientCredentialsGrant)
    authorization.register_endpoint(Introspection)
    authorization.register_endpoint(Revocation)
    authorization.register_endpoint(EndSession)
    authorization.register_extension(Issuer())
    protector = Protector()
    protector.register_token_validator(AccessTokenValidator())
    authorization.register_endpoint(Userinfo(resource_protector=protector))
    app.extensions["authgate_resource_protector"] = protector
