"""private_key_jwt client authentication (RFC 7523): the client signs an assertion with a key it registered."""

import logging
import time
from datetime import UTC, datetime, timedelta

from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.capabilities import ASSERTION_ALGS
from app.services import tokens

log = logging.getLogger(__name__)


class PrivateKeyJWT(JWTBearerClientAssertion):
    """private_key_jwt: the client signs an assertion with a key it registered."""

    # The stubs mark it Final; Authlib's docs name the method by overriding it.
    CLIENT_AUTH_METHOD = "private_key_jwt"  # type: ignore[misc]
    MAX_LIFETIME = 3600
    # joserfc decodes only its "recommended" algorithms unless told; discovery advertises these.
    ALGORITHMS = list(ASSERTION_ALGS)

    def get_audiences(self):
        base = current_app.config["AUTHGATE_ISSUER"]
        return [base, f"{base}/oauth2/token", f"{base}/oauth2/introspect", f"{base}/oauth2/revoke"]

    def resolve_client_public_key(self, client):
        if not client.jwks:
            raise InvalidRequestError("The client has no registered keys.")
        return KeySet.import_key_set(client.jwks)

    def process_assertion_claims(self, assertion, resolve_key):
        """Authlib's, with the algorithms this server accepts (Authlib decodes without a list)."""
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=self.ALGORITHMS)
        except JoseError as e:
            log.debug("Assertion Error: %r", e)
            raise InvalidClientError(description=e.description) from e
        self.verify_claims(token.claims)
        if token.claims["exp"] - time.time() > self.MAX_LIFETIME:
            raise InvalidClientError(description="The assertion must expire within an hour.")
        return token.claims

    def validate_jti(self, claims, jti):
        """Refuse a replayed assertion; remember each jti until the assertion expires."""
        key = f"assertion:{claims['sub']}:{jti}"[:128]
        expires = datetime.fromtimestamp(claims["exp"], UTC) + timedelta(seconds=self.leeway)
        # Insert-or-ignore: of two requests with one assertion, only the first gets True. The
        # endpoint commits also when it answers with an error, so a failing request keeps it used.
        return tokens.deny(key, expires)
