"""The browser-facing authorization endpoint, /oauth2/authorize: sign-in, consent, then Authlib's redirect."""

import time
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError, UnsupportedResponseTypeError
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import current_app, redirect, request, url_for

from app.auth import bp, browser, mfa
from app.auth.pending import error_page
from app.capabilities import RESPONSE_MODES, RESPONSE_TYPES
from app.extensions import authorization, csrf
from app.oauth.params import malformed, quoted
from app.services import committed, sessions
from app.services.client_cache import cached_client

# max_age is a number of seconds; more digits than this are not a lifetime (and int() refuses
# strings of thousands of digits).
MAX_AGE_DIGITS = 12


def _request_query() -> str:
    """The authorization request's parameters, as a query string without our own `rid`."""
    source = request.args if request.method == "GET" else request.form
    return urlencode([(k, v) for k, v in source.items(multi=True) if k != "rid"])


def _identify_client():
    """Check client_id and redirect_uri before anything may be redirected."""
    values = request.values
    client_ids = values.getlist("client_id")
    if len(client_ids) != 1 or not client_ids[0]:
        why = "repeats client_id" if client_ids else "has no client_id"
        return None, None, ("This sign-in link is broken", f"The application's request {why}.")
    client = cached_client(client_ids[0])
    if client is None:
        return (
            None,
            None,
            (
                "Unknown application",
                f"No application is registered with client_id {client_ids[0]!r}.",
            ),
        )
    uris = values.getlist("redirect_uri")
    if len(uris) > 1:
        return (
            client,
            None,
            ("This sign-in link is broken", "The application's request repeats redirect_uri."),
        )
    if uris:
        if not client.check_redirect_uri(uris[0]):
            return (
                client,
                None,
                (
                    "This return address is not registered",
                    f"{client.name} asked to send you back to {uris[0]}, which is not one of its "
                    "registered redirect URIs, so AuthGate will not send you there.",
                ),
            )
        return client, uris[0], None
    default = client.get_default_redirect_uri()
    if default is None:
        return (
            client,
            None,
            (
                "This sign-in link is broken",
                "The application's request has no redirect_uri and more than one is registered.",
            ),
        )
    return client, default, None


def _unsupported(values) -> OAuth2Error | None:
    """What the request asks that this server does not do, checked before Authlib reads the request."""
    if (refused := malformed(values)) is not None:
        return refused
    # OIDC Core 6: request objects are not supported, by value or by reference.
    if "request" in values:
        return RequestNotSupportedError("Request objects (the 'request' parameter) are not supported.")
    if "request_uri" in values:
        return RequestURINotSupportedError("The 'request_uri' parameter is not supported.")
    response_mode = values.get("response_mode")
    if response_mode is not None and response_mode not in RESPONSE_MODES:
        return InvalidRequestError(
            f"response_mode must be one of {', '.join(RESPONSE_MODES)}, not {quoted(response_mode)}."
        )
    # Authlib's own error for this quotes the value in its description, and refuses (with a
    # ValueError) a description with quotes or non-ASCII text in it.
    response_type = values.get("response_type")
    if not response_type:
        return UnsupportedResponseTypeError(response_type, description="The request has no response_type.")
    if response_type not in RESPONSE_TYPES:
        why = f"The response type {quoted(response_type)} is not supported by the server."
        return UnsupportedResponseTypeError(response_type, description=why)
    return None


def _redirect_error(redirect_uri: str, error: OAuth2Error, state: str | None):
    params: list[tuple[str, str]] = [("error", str(error.error))]
    if error.description:
        params.append(("error_description", error.description))
    if state:
        params.append(("state", state))
    params.append(("iss", current_app.config["AUTHGATE_ISSUER"]))
    return redirect(add_params_to_uri(redirect_uri, params), 302)


@bp.route("/oauth2/authorize", methods=["GET", "POST"])
@csrf.exempt
@committed
def authorize():
    client, redirect_uri, problem = _identify_client()
    if problem:
        return error_page(*problem)
    state = request.values.get("state")
    if (refused := _unsupported(request.values)) is not None:
        return _redirect_error(redirect_uri, refused, state)
    query = _request_query()
    if len(query) > browser.MAX_PENDING_CHARS:
        # It could not wait in the cookie for the sign-in (browsers drop cookies over about 4 KB).
        too_long = InvalidRequestError(
            f"The authorization request is longer than {browser.MAX_PENDING_CHARS} characters."
        )
        return _redirect_error(redirect_uri, too_long, state)
    rid = request.args.get("rid")
    pending = browser.get_pending(rid)
    if pending is not None and pending["query"] != query:
        rid, pending = None, None  # marks only count for the request they were made for
    found = browser.current_login(client)
    browser_session, user = found if found else (None, None)
    try:
        grant = authorization.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return _redirect_error(redirect_uri, error, state)

    prompts = set(request.values.get("prompt", "").split())
    signed_in_now = bool(pending and pending.get("login_at"))
    need_login = user is None or ("login" in prompts and not signed_in_now)
    max_age = request.values.get("max_age")
    if max_age is not None:
        if not (max_age.isascii() and max_age.isdigit() and len(max_age) <= MAX_AGE_DIGITS):
            invalid = InvalidRequestError("max_age must be a whole number of seconds.")
            return _redirect_error(redirect_uri, invalid, state)
        if user and not signed_in_now and time.time() - browser_session.auth_time > int(max_age):
            need_login = True
    if need_login:
        if "none" in prompts:
            return _redirect_error(redirect_uri, LoginRequiredError(), state)
        rid = rid or browser.add_pending(query, client.client_id)
        return redirect(url_for("auth.login", rid=rid))

    if (second_factor := mfa.step_up_needed(client, browser_session, user)) is not None:
        if "none" in prompts:
            return _redirect_error(redirect_uri, InteractionRequiredError(), state)
        return mfa.step_up(second_factor, browser_session, user, rid or browser.add_pending(query, client.client_id))

    if pending and pending.get("denied"):
        browser.drop_pending(rid)
        return authorization.create_authorization_response(grant=grant, grant_user=None)
    if client.require_consent and not (pending and pending.get("consented")):
        scopes = grant.request.scope.split()
        if "consent" in prompts or not sessions.consent_covers(client, user, scopes):
            if "none" in prompts:
                return _redirect_error(redirect_uri, ConsentRequiredError(), state)
            rid = rid or browser.add_pending(query, client.client_id)
            return redirect(url_for("auth.consent", rid=rid))

    grant.request.browser_session = browser_session
    sessions.touch(browser_session)
    browser.drop_pending(rid)
    return authorization.create_authorization_response(grant=grant, grant_user=user)
