"""The grants Authlib runs at the token and authorize endpoints, with PKCE and the OpenID Connect extensions."""

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core import grants as oidc_grants
from flask import g

from app.capabilities import AUTH_METHODS, CODE_CHALLENGE_METHODS, CONFIDENTIAL_AUTH_METHODS
from app.extensions import db
from app.models import AuthorizationCode, User
from app.services import sessions, tokens
from app.services.keys import keyring
from app.services.tokens.claims import issuer


def _enabled_user(user_id: int, client_pk: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or not user.enabled or user.client_pk != client_pk:
        raise InvalidGrantError("The user no longer exists or is disabled.")
    return user


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

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

    def save_token(self, token):
        """Use up the code before its tokens are stored; a lost race stores nothing."""
        self.delete_authorization_code(self.request.authorization_code)
        self.request.code_used = True
        super().save_token(token)

    def delete_authorization_code(self, authorization_code):
        """Called by Authlib after `save_token` (which used the code up) and by in-process redemption."""
        if getattr(self.request, "code_used", False):
            return
        if not tokens.consume_code(authorization_code):
            # Lost the race: the winner's tokens are committed by now. A code used twice revokes what
            # it issued (RFC 6749 4.1.2), whichever request came second; committed with the error.
            tokens.revoke_replayed(tokens.reread(authorization_code), self.request.client)
            raise InvalidGrantError("The authorization code was already used.")

    def authenticate_user(self, authorization_code):
        return _enabled_user(authorization_code.user_id, authorization_code.client_pk)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        row = tokens.find_refresh_token(refresh_token, self.request.client)
        if row is not None and tokens.is_rotated(row):
            tokens.report_reuse(row, self.request.client)  # committed with the error response
            return None
        if row is None:
            return None
        # The sign-in session it came from, if still live: a token without offline_access ends with it.
        self.request.browser_session = sessions.find_live(row.session_id)
        if self.request.browser_session is None and tokens.is_session_bound(row):
            return None
        return row

    def authenticate_user(self, refresh_token):
        return _enabled_user(refresh_token.user_id, refresh_token.client_pk)

    def save_token(self, token):
        """Rotate the presented token before its successor is stored; a lost race is a reuse."""
        if not tokens.rotate_refresh_token(self.request.refresh_token):
            tokens.report_reuse(self.request.refresh_token, self.request.client)
            raise InvalidGrantError("The refresh token was already used.")
        if self.request.browser_session is not None and not self.request.refresh_token.is_offline:
            # Using a session-bound token keeps its sign-in alive; an offline one lives on its own.
            sessions.touch(self.request.browser_session)
        super().save_token(token)

    def revoke_old_credential(self, refresh_token):
        """Called by Authlib after saving the new token: the old one was rotated in `save_token`."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)

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

    DEFAULT_CODE_CHALLENGE_METHOD = CODE_CHALLENGE_METHODS[0]
    SUPPORTED_CODE_CHALLENGE_METHOD = list(CODE_CHALLENGE_METHODS)

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        client = grant.request.client
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if not challenge and (client.is_public or client.require_pkce):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if challenge and method not in self.SUPPORTED_CODE_CHALLENGE_METHOD:
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
            # A refreshed ID token repeats the original sign-in but carries no nonce, and names its
            # session only while that lives (an offline token outlives it).
            sign_in.nonce = None
            if getattr(request, "browser_session", None) is None:
                sign_in.session_id = None
        return tokens.id_token(request.client, request.user, token["scope"], sign_in, token.get("access_token"))


class OpenIDRefresh(OpenIDCode):
    """Adds a fresh ID token to a refresh response when the grant includes openid."""

    def __call__(self, grant):
        grant.register_hook("after_create_token_response", self.process_token)
