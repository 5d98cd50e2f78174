"""The relying-party side of social login: send the browser to an upstream provider, then check what comes back.

Built on Authlib's requests client (`OAuth2Session`): one short-lived session per provider and
step, made from the provider's database row, with the upstream timeout on every request.
OpenID Connect providers (Google and any issuer) are read from their discovery document; the
ID token is verified here with joserfc against the upstream's JWKS: signature, iss, aud (and
azp), exp, iat and nonce. GitHub speaks plain OAuth 2; who the person is comes from its REST
API, and only the primary email counts, verified or not.
"""

from dataclasses import dataclass

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, InvalidClaimError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from app.capabilities import UPSTREAM_ID_TOKEN_ALGS
from app.models import IdentityProvider
from app.runtime import runtime
from app.services import ServiceError
from app.services.idps import DISCOVERY_PATH, GOOGLE_ISSUER, callback_url, client_secret_of

# Clock skew allowed on the upstream's exp and iat.
LEEWAY = 120
# Which failure a token with several wrong or missing claims is reported as.
CLAIM_ORDER = ("iss", "aud", "azp", "exp", "iat", "nonce", "sub")
METADATA_MAX_AGE = 3600
GITHUB_API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


class UpstreamError(ServiceError):
    """The upstream could not be reached or its answer did not check out.

    `reason` is for the audit log (unreachable, timeout, bad_response, token_error, misconfigured,
    invalid_id_token, wrong_issuer, wrong_audience, wrong_nonce, expired); the message is for the page.
    """

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass
class Profile:
    """Who the upstream says signed in; the subject is the upstream's stable id of the account."""

    subject: str
    email: str | None = None
    email_verified: bool = False
    username: str | None = None
    first_name: str = ""
    last_name: str = ""


@dataclass
class Redirect:
    """Where to send the browser, and what must come back with it (kept in the signed session)."""

    url: str
    state: str
    nonce: str
    code_verifier: str


def _is_oidc(provider: IdentityProvider) -> bool:
    return provider.kind in ("google", "oidc")


def _timeout() -> float:
    return current_app.config["AUTHGATE_UPSTREAM_TIMEOUT"]


def _session(provider: IdentityProvider, **kwargs) -> OAuth2Session:
    return OAuth2Session(
        provider.upstream_client_id,
        client_secret_of(provider),
        scope=" ".join(provider.scopes),
        redirect_uri=callback_url(provider),
        code_challenge_method="S256",
        default_timeout=_timeout(),
        **kwargs,
    )


def _get_json(
    url: str, what: str, provider: IdentityProvider, session: requests.Session | None = None, refused=None, **kwargs
):
    """GET a JSON document from the upstream, turning every way it can fail into an UpstreamError.

    A 403 or 404 answer returns `refused` instead when that is given.
    """
    try:
        response = (session or requests).get(url, timeout=_timeout(), **kwargs)
    except requests.Timeout:
        raise UpstreamError("timeout", f"{provider.name} did not answer in time.") from None
    except requests.RequestException:
        raise UpstreamError("unreachable", f"{provider.name} could not be reached.") from None
    if refused is not None and response.status_code in (403, 404):
        return refused
    if response.status_code != 200:
        raise UpstreamError("bad_response", f"{provider.name} answered the request for {what} with an error.")
    try:
        return response.json()
    except ValueError:
        raise UpstreamError("bad_response", f"{provider.name} sent {what} that is not JSON.") from None


def _cached(url: str, max_age: int, fetch, force: bool = False):
    """Discovery documents and key sets are fetched once and reused (per app, for `max_age` seconds)."""
    cache = runtime().upstream
    hit = None if force else cache.get(url)
    if hit is not None:
        return hit
    value = fetch()
    cache.put(url, value, max_age)
    return value


def metadata(provider: IdentityProvider) -> dict:
    """The provider's OpenID Connect discovery document, checked against its configured issuer."""
    url = _configured(provider.issuer, provider, "issuer").rstrip("/") + DISCOVERY_PATH

    def fetch():
        document = _get_json(url, "its discovery document", provider)
        wanted = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(document, dict) or not all(isinstance(document.get(k), str) for k in wanted):
            raise UpstreamError("misconfigured", f"{provider.name}'s discovery document is incomplete.")
        # OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for.
        if document["issuer"] != provider.issuer:
            raise UpstreamError("misconfigured", f"{provider.name}'s discovery document names another issuer.")
        return document

    return _cached(url, METADATA_MAX_AGE, fetch)


def _key_set(provider: IdentityProvider, jwks_uri: str, force: bool = False) -> KeySet:
    def fetch():
        document = _get_json(jwks_uri, "its signing keys", provider)
        try:
            return KeySet.import_key_set(document)
        except (JoseError, ValueError, TypeError, KeyError):
            raise UpstreamError("bad_response", f"{provider.name}'s signing keys cannot be read.") from None

    return _cached(jwks_uri, METADATA_MAX_AGE, fetch, force=force)


# --- step 1: the redirect ----------------------------------------------------------------


def begin(provider: IdentityProvider) -> Redirect:
    """Build the upstream authorization URL with a fresh state, nonce and PKCE verifier."""
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    extra = {}
    if _is_oidc(provider):
        endpoint = metadata(provider)["authorization_endpoint"]
        extra["nonce"] = nonce
    else:
        endpoint = _configured(provider.web_url, provider, "web address").rstrip("/") + "/login/oauth/authorize"
    # PKCE goes to every upstream: one that does not support it ignores unknown parameters (RFC 6749 3.1).
    with _session(provider) as oauth:
        url, _ = oauth.create_authorization_url(endpoint, state=state, code_verifier=verifier, **extra)
    return Redirect(url, state, nonce, verifier)


# --- step 2: the callback ----------------------------------------------------------------


def _fetch_token(provider: IdentityProvider, oauth: OAuth2Session, endpoint: str, code: str, verifier: str) -> dict:
    try:
        return oauth.fetch_token(endpoint, code=code, code_verifier=verifier, grant_type="authorization_code")
    except requests.Timeout:
        raise UpstreamError("timeout", f"{provider.name} did not answer in time.") from None
    except requests.RequestException:
        raise UpstreamError("unreachable", f"{provider.name} could not be reached.") from None
    except OAuthError as exc:
        raise UpstreamError("token_error", f"{provider.name} refused the sign-in ({exc.error}).") from None
    except ValueError:
        raise UpstreamError("bad_response", f"{provider.name} sent a token response that cannot be read.") from None


def finish(provider: IdentityProvider, code: str, nonce: str, code_verifier: str) -> Profile:
    """Exchange the code and return who signed in, after checking everything the upstream sent."""
    if not isinstance(code, str) or not code:
        raise UpstreamError("bad_response", f"{provider.name} sent no authorization code.")
    if _is_oidc(provider):
        return _finish_oidc(provider, code, nonce, code_verifier)
    return _finish_github(provider, code, code_verifier)


def _token_auth_method(document: dict) -> str:
    supported = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return "client_secret_basic" if "client_secret_basic" in supported else "client_secret_post"


def _finish_oidc(provider: IdentityProvider, code: str, nonce: str, verifier: str) -> Profile:
    document = metadata(provider)
    with _session(provider, token_endpoint_auth_method=_token_auth_method(document)) as oauth:
        token = _fetch_token(provider, oauth, document["token_endpoint"], code, verifier)
        if not isinstance(token.get("id_token"), str):
            raise UpstreamError("bad_response", f"{provider.name} sent no ID token.")
        claims = verify_id_token(provider, document, token["id_token"], nonce)
        info = {}
        if "email" not in claims and isinstance(document.get("userinfo_endpoint"), str):
            info = _get_json(document["userinfo_endpoint"], "your profile", provider, session=oauth)
            # OIDC Core 5.3.2: userinfo about another subject must not be used.
            if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
                info = {}
    merged = {**info, **claims}
    first, last = merged.get("given_name"), merged.get("family_name")
    if not (first or last) and isinstance(merged.get("name"), str):
        first, _, last = merged["name"].strip().partition(" ")
    email = merged.get("email")
    return Profile(
        subject=claims["sub"],
        email=email if isinstance(email, str) and email else None,
        # Some providers send the string "true".
        email_verified=merged.get("email_verified") in (True, "true"),
        username=merged.get("preferred_username") if isinstance(merged.get("preferred_username"), str) else None,
        first_name=first if isinstance(first, str) else "",
        last_name=last if isinstance(last, str) else "",
    )


def _configured(value: str | None, provider: IdentityProvider, what: str) -> str:
    """A setting the provider's kind requires (the service refuses to save a provider without it)."""
    if not value:
        raise UpstreamError("misconfigured", f"{provider.name} has no {what} configured.")
    return value


def _issuers(provider: IdentityProvider) -> set[str]:
    # Google writes its issuer with or without the scheme.
    if provider.kind == "google" and provider.issuer == GOOGLE_ISSUER:
        return {GOOGLE_ISSUER, "accounts.google.com"}
    return {_configured(provider.issuer, provider, "issuer")}


class IDTokenClaims(JWTClaimsRegistry):
    """joserfc's claim checks, with the ID token's own: nonce a string, sub a string of at most 255 characters."""

    def validate_nonce(self, value: object) -> None:
        if not isinstance(value, str):
            raise InvalidClaimError("nonce")
        self.check_value("nonce", value)

    def validate_sub(self, value: object) -> None:
        super().validate_sub(value)
        if not isinstance(value, str) or len(value) > 255:
            raise InvalidClaimError("sub")


def id_token_claims(provider: IdentityProvider, claims: dict, nonce: str) -> IDTokenClaims:
    """What the ID token must say (OIDC Core 3.1.3.7): our client among its audiences, the sign-in's nonce."""
    options: dict[str, ClaimsOption] = {
        "iss": {"essential": True, "values": sorted(_issuers(provider))},
        "aud": {"essential": True, "value": provider.upstream_client_id},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "sub": {"essential": True},
        "nonce": {"essential": True, "value": nonce},
    }
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1:
        # Several audiences: the authorized party must be us.
        options["azp"] = {"essential": True, "value": provider.upstream_client_id}
    return IDTokenClaims(None, LEEWAY, **options)


def _is_time(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _claim_failure(provider: IdentityProvider, claims: dict, error: ClaimError) -> UpstreamError:
    """The UpstreamError for a claim joserfc refused; of several missing claims, the first in CLAIM_ORDER."""
    names = error.claim.split(",")
    claim = next((name for name in CLAIM_ORDER if name in names), names[0])
    name = provider.name
    if claim == "iss":
        return UpstreamError("wrong_issuer", f"{name}'s ID token comes from another issuer.")
    if claim in ("aud", "azp"):
        return UpstreamError("wrong_audience", f"{name}'s ID token was issued to another application.")
    if claim == "nonce":
        return UpstreamError("wrong_nonce", f"{name}'s ID token belongs to another sign-in.")
    if isinstance(error, ExpiredTokenError) or (claim in ("iat", "nbf") and _is_time(claims.get(claim))):
        return UpstreamError("expired", f"{name}'s ID token has expired; check the server clocks.")
    return UpstreamError("invalid_id_token", f"{name}'s ID token is not validly signed.")


def verify_id_token(provider: IdentityProvider, document: dict, id_token: str, nonce: str) -> dict:
    """Check the upstream ID token: signature against its JWKS, then iss, aud/azp, exp, iat, nonce, sub."""
    offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in UPSTREAM_ID_TOKEN_ALGS if alg in offered] or ["RS256"]
    invalid = UpstreamError("invalid_id_token", f"{provider.name}'s ID token is not validly signed.")
    try:
        try:
            decoded = jwt.decode(id_token, _key_set(provider, document["jwks_uri"]), algorithms=algorithms)
        except InvalidKeyIdError:
            # The upstream rotated its keys since we cached them.
            decoded = jwt.decode(id_token, _key_set(provider, document["jwks_uri"], force=True), algorithms=algorithms)
    except (JoseError, ValueError, TypeError, KeyError):
        raise invalid from None
    claims = decoded.claims
    if not isinstance(nonce, str) or not nonce:
        raise UpstreamError("wrong_nonce", f"{provider.name}'s ID token belongs to another sign-in.")
    try:
        id_token_claims(provider, claims, nonce).validate(claims)
    except ClaimError as exc:
        raise _claim_failure(provider, claims, exc) from None
    return claims


def _finish_github(provider: IdentityProvider, code: str, verifier: str) -> Profile:
    web = _configured(provider.web_url, provider, "web address").rstrip("/")
    api = _configured(provider.api_url, provider, "API address").rstrip("/")
    with _session(provider, token_endpoint_auth_method="client_secret_post") as oauth:
        token = _fetch_token(provider, oauth, f"{web}/login/oauth/access_token", code, verifier)
        if not token.get("access_token"):
            raise UpstreamError("bad_response", f"{provider.name} sent no access token.")
        user = _get_json(f"{api}/user", "your profile", provider, session=oauth, headers=GITHUB_API_HEADERS)
        # Without the user:email permission the list is refused: then no address is known.
        emails = _get_json(
            f"{api}/user/emails", "your emails", provider, session=oauth, refused=[], headers=GITHUB_API_HEADERS
        )
    if not isinstance(user, dict) or not isinstance(user.get("id"), int):
        raise UpstreamError("bad_response", f"{provider.name} sent a profile without an account id.")
    if not isinstance(emails, list):
        emails = []
    primary = next((e for e in emails if isinstance(e, dict) and e.get("primary")), None)
    first, _, last = (user.get("name") or "").strip().partition(" ")
    return Profile(
        subject=str(user["id"]),
        email=primary.get("email") if primary else None,
        email_verified=bool(primary and primary.get("verified") is True),
        username=user.get("login") if isinstance(user.get("login"), str) else None,
        first_name=first,
        last_name=last.strip(),
    )
