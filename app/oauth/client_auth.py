"""Client authentication: throttled by failures, HTTP Basic read strictly, private_key_jwt (RFC 7523)."""

import base64
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientAuthentication, ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.capabilities import ASSERTION_ALGS
from app.oauth.params import error_text, has_nul, has_surrogate
from app.services import guard, tokens
from app.services.tokens.claims import issuer

log = logging.getLogger(__name__)


class ClientAuthThrottled(OAuth2Error):
    """429: this address failed client authentication too often (as this client); nothing was checked."""

    # RFC 6749 5.2 has no token endpoint error for "come back later". `temporarily_unavailable`
    # (RFC 6749 4.1.2.1, in the OAuth errors registry) is the code that means it, and what this
    # server answers when its database is down. Not `invalid_client`: the credentials were not
    # checked, and a client told they are wrong may alert someone or rotate a good secret. Not
    # `slow_down` (RFC 8628): that asks a device-flow poller to poll less often. The status
    # (RFC 6585) and Retry-After say how long to wait.
    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, retry_after: int):
        super().__init__(f"Too many failed client authentications; try again in {retry_after} seconds.")
        self.retry_after = retry_after

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class ThrottledClientAuthentication:
    """Authlib's client authentication of one request from `ip`, under the failure throttle of app/services/guard.py.

    Authlib decides what fails: every invalid_client (no or malformed credentials, an unknown
    client, a wrong secret, a bad assertion, a method the client may not use) counts against the
    address and against each client_id Authlib looked up for the request. Success counts nothing.
    While an allowance is used up the request is refused with 429 before anything is checked: the
    throttle is read when Authlib looks the client up by the client_id it read from the Basic
    header, the form or the assertion's `sub`, so nothing is parsed twice. A request without an
    address (made inside the server, app/oauth/inprocess.py) is neither counted nor throttled.
    """

    def __init__(self, query_client: Callable[[str], ClientMixin | None], methods: dict, ip: str | None):
        self.ip = ip
        self._query_client = query_client
        self._client_ids: list[str] = []
        # The stubs' lookup always finds a client; Authlib's methods answer None with invalid_client.
        self._authlib = ClientAuthentication(self._throttled_query_client)  # type: ignore[arg-type]
        for method, func in methods.items():
            self._authlib.register(method, func)

    def __call__(self, request, methods, endpoint) -> ClientMixin:
        try:
            return self._authlib(request, methods, endpoint)
        except InvalidClientError:
            if not self._client_ids:
                # Refused before naming a client (no or malformed credentials): only the address's
                # throttle applies, read here so a request that names a client reads it once.
                self._refuse_if_throttled(None)
            # Each client_id whose secret may have been tried counts (and the address once for each),
            # so a decoy credential in the same request (RFC 6749 2.3 forbids two; Authlib tries
            # each) cannot draw the count away from the client under attack.
            for client_id in dict.fromkeys(self._client_ids) or [None]:
                guard.client_auth_failed(client_id, self.ip)
            raise

    def _throttled_query_client(self, client_id: str) -> ClientMixin | None:
        """Authlib's lookup of the client a credential names, refused while throttled, before any secret is checked."""
        self._refuse_if_throttled(client_id)
        self._client_ids.append(client_id)
        return self._query_client(client_id)

    def _refuse_if_throttled(self, client_id: str | None) -> None:
        try:
            guard.client_auth_wait(client_id, self.ip)
        except guard.Throttled as throttled:
            raise ClientAuthThrottled(throttled.retry_after) from None


def basic_credentials(headers) -> tuple[str, str] | None:
    """The client_id and secret of an `Authorization: Basic` header (RFC 6749 2.3.1); None without one."""
    # Authlib's reader raises (UnicodeDecodeError, ValueError) for a header that is empty after
    # the scheme, not ASCII or not UTF-8 once decoded: a 500. A Basic header that does not carry
    # "id:secret" is a failed authentication with the scheme the client used (RFC 6749 5.2).
    scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip()).decode("utf-8")
    except ValueError:  # binascii.Error, non-ASCII input and UnicodeDecodeError are all ValueErrors
        decoded = ""
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise InvalidClientError(
            status_code=401, description="The Authorization header is not valid Basic credentials."
        )
    return unquote(client_id), unquote(secret)


def authenticate_client_secret_basic(query_client, request):
    """client_secret_basic, as Authlib's, with the header read by `basic_credentials`."""
    credentials = basic_credentials(request.headers)
    if credentials is None:
        return None
    client_id, secret = credentials
    if not secret:
        return None
    client = query_client(client_id)
    if client is None:
        raise InvalidClientError(status_code=401, description="The client does not exist on this server.")
    return client if client.check_client_secret(secret) else None


class PrivateKeyJWT(JWTBearerClientAssertion):
    """private_key_jwt: the client signs an assertion with a key it registered."""

    # The stubs mark it Final; Authlib's docs name the method by overriding it.
    CLIENT_AUTH_METHOD = "private_key_jwt"  # type: ignore[misc]
    MAX_LIFETIME = 3600
    # joserfc decodes only its "recommended" algorithms unless told; discovery advertises these.
    ALGORITHMS = list(ASSERTION_ALGS)

    def get_audiences(self):
        base = issuer()
        return [base, f"{base}/oauth2/token", f"{base}/oauth2/introspect", f"{base}/oauth2/revoke"]

    def resolve_client_public_key(self, client):
        if not client.jwks:
            raise InvalidRequestError("The client has no registered keys.")
        return KeySet.import_key_set(client.jwks)

    def extract_assertion(self, assertion):
        """Authlib's, refusing an assertion whose claims nest too deep to parse or whose `sub` no client can have."""
        # Authlib reads the unverified claims (for `sub`) with json.loads, which raises
        # RecursionError, not ValueError, for deeply nested JSON.
        try:
            headers, claims = super().extract_assertion(assertion)
        except RecursionError:
            raise InvalidClientError(description="Invalid JWT assertion.") from None
        # Authlib looks the client up by this `sub` before the signature is checked.
        if isinstance(claims.get("sub"), str) and has_surrogate(claims["sub"]):
            raise InvalidClientError(description="Invalid claim: 'sub'")
        return headers, claims

    def process_assertion_claims(self, assertion, resolve_key):
        """Authlib's, with the algorithms this server accepts (Authlib decodes without a list)."""
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=self.ALGORITHMS)
        except JoseError as e:
            log.debug("Assertion Error: %r", e)
            # joserfc's description may quote the assertion's header (`crit`, `alg`).
            raise InvalidClientError(description=error_text(e.description)) from e
        except RecursionError:
            raise InvalidClientError(description="Invalid JWT assertion.") from None
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims, jti):
        """Refuse a replayed assertion; remember each jti until the assertion expires."""
        # Called by verify_claims once exp is a number: bound it before it becomes a date (a far
        # future one, or NaN, which json.loads accepts, would not convert), and keep a key the
        # deny-list can store.
        if not claims["exp"] - time.time() <= self.MAX_LIFETIME:
            raise InvalidClientError(description="The assertion must expire within an hour.")
        key = f"assertion:{claims['sub']}:{jti}"[:128]
        if has_nul(key) or has_surrogate(key):
            raise InvalidClientError(description="The assertion's jti holds a NUL or a lone surrogate.")
        expires = datetime.fromtimestamp(claims["exp"], UTC) + timedelta(seconds=self.leeway)
        # Insert-or-ignore: of two requests with one assertion, only the first gets True. The
        # endpoint commits also when it answers with an error, so a failing request keeps it used.
        return tokens.deny(key, expires)
