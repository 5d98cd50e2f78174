"""Token requests made inside this server: the console redeeming the code of its own sign-in."""

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AuthorizationCodeGrant, OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import current_app

from app.extensions import authorization
from app.models import AuthorizationCode, Client


class InProcessTokenRequest(OAuth2Request):
    """A form-encoded token request that never went over HTTP."""

    def __init__(self, form: dict[str, str]):
        super().__init__("POST", current_app.config["AUTHGATE_ISSUER"] + "/oauth2/token")
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def form(self):
        return self._form

    @property
    def args(self):
        return {}


def redeem_code(code: str, client: Client, redirect_uri: str, code_verifier: str) -> AuthorizationCode | None:
    """Use up an authorization code of a public client after the code grant's own checks; None when any fails.

    The same checks as at the token endpoint: client authentication, grant type, the code's
    client, expiry and single use (a replay revokes what the code issued), the redirect URI and
    PKCE S256. The code is used up only when every check passed. The caller commits.
    """
    request = InProcessTokenRequest(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_id": client.client_id,
        }
    )
    try:
        grant = authorization.get_token_grant(request)
        if not isinstance(grant, AuthorizationCodeGrant):
            return None
        grant.validate_token_request()
        grant.delete_authorization_code(request.authorization_code)
    except OAuth2Error:
        return None
    return request.authorization_code
