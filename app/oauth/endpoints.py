"""Authlib's endpoints besides token: userinfo, introspection, revocation, end session, and their token adapter."""

import base64
import json

from authlib.oauth2.rfc6749.errors import InvalidRequestError, UnsupportedTokenTypeError
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import UserInfo, UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import g
from joserfc.jwk import KeySet

from app.capabilities import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS, SIGNING_ALGS, TOKEN_TYPE_HINTS
from app.extensions import db
from app.oauth.params import quoted
from app.services import tokens
from app.services.client_cache import cached_client
from app.services.keys import keyring
from app.services.tokens.claims import issuer


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
    def __call__(self, request):
        """Authlib's userinfo; on PostgreSQL its reads run outside a transaction (no BEGIN, no ROLLBACK)."""
        # Userinfo never writes, and its reads (the user, their roles) need no common snapshot. On
        # SQLite switching the mode costs more than it saves (PRAGMAs when the connection returns);
        # a session that already began (a caller's, in the tests) keeps its transaction.
        if not db.session().in_transaction() and db.session.get_bind().dialect.name == "postgresql":
            db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return super().__call__(request)

    def generate_user_info(self, user, scope):
        return UserInfo(tokens.user_claims(user, scope))

    def get_issuer(self):
        return issuer()


class UnsupportedTokenType(UnsupportedTokenTypeError):
    # RFC 7009 returns it as an RFC 6749 error response: 400, not Authlib's 401 with a challenge.
    status_code = 400

    def __init__(self, description: str):
        # Authlib's takes (auth_type, realm) for a WWW-Authenticate challenge, not a description:
        # passed one, it sent no error_description and put the caller's hint in a response header.
        super().__init__()
        self.description = description


def check_token_params(request) -> None:
    if not request.form.get("token"):
        raise InvalidRequestError("Missing 'token' in request.")
    hint = request.form.get("token_type_hint")
    if hint and hint not in TOKEN_TYPE_HINTS:
        raise UnsupportedTokenType(f"token_type_hint must be access_token or refresh_token, not {quoted(hint)}.")


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)

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
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def check_params(self, request, client):
        check_token_params(request)

    def authenticate_token(self, request, client):
        self.check_params(request, client)
        return request.form["token"]

    def revoke_token(self, token, request):
        tokens.revoke(token, request.client)


def _header_typ(token: str) -> str | None:
    """The `typ` of a JWT's header, lower-cased; None when it has none or is not a JWT (then decoding fails later)."""
    try:
        segment = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError, TypeError):
        return None
    typ = header.get("typ") if isinstance(header, dict) else None
    return typ.lower() if isinstance(typ, str) else None


class EndSession(EndSessionEndpoint):
    """RP-initiated logout: validate the request and decide the redirect."""

    # The browser's sign-ins live in the hosted pages' cookie; the hosted logout page
    # (app/auth/logout.py) ends them once this endpoint has validated the request.

    def get_server_jwks(self):
        return KeySet.import_key_set({"keys": [k.public_jwk for k in keyring().published()]})

    def _validate_id_token_hint(self, id_token_hint):
        if _header_typ(id_token_hint) in ("at+jwt", "application/at+jwt"):
            # Our access tokens are signed by the same keys: an ID token names its user to
            # the client, an access token is for resource servers and may have been passed on.
            raise InvalidRequestError("The id_token_hint is an access token, not an ID token.")
        try:
            claims = super()._validate_id_token_hint(id_token_hint)
        except (RecursionError, ValueError, TypeError):
            # Deeply nested JSON in the hint's header (json.loads raises RecursionError), a header
            # member of the wrong type (joserfc iterates a "crit" of true: TypeError), or a joserfc
            # error quoting the header in text Authlib refuses as an error description.
            raise InvalidRequestError("The id_token_hint is not a valid ID token.") from None
        if claims.get("iss") != issuer():
            raise InvalidRequestError("The id_token_hint was not issued here.")
        return claims

    def get_algorithms(self):
        return list(SIGNING_ALGS)

    def is_post_logout_redirect_uri_legitimate(self, request, post_logout_redirect_uri, client, logout_hint):
        # Without an id_token_hint the user confirmed on our page (a CSRF-checked form).
        return bool(g.get("logout_confirmed"))

    def end_session(self, end_session_request):
        """Nothing to do here: the hosted logout page ended the browser's sessions already."""


class Issuer(IssuerParameter):
    def get_issuer(self):
        return issuer()
