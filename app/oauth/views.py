"""Protocol endpoints: authorize, token, JWKS, userinfo, introspection, revocation, logout, discovery."""

import json
import time
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import Response, current_app, g, redirect, render_template, request, url_for
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError as CSRFValidationError

from app.extensions import authorization, csrf
from app.oauth import bp, browser
from app.oauth.discovery import metadata
from app.oauth.server import query_client
from app.runtime import runtime
from app.services import commit, sessions
from app.services.keys import keyring


def error_page(title: str, message: str, status: int = 400):
    """A browser-facing protocol error: explain it, never redirect."""
    return render_template("error.html", title=title, message=message), status


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
    client = query_client(client_ids[0])
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


def _redirect_error(redirect_uri: str, error: OAuth2Error, state: str | None):
    params = [("error", error.error)]
    if error.description:
        params.append(("error_description", error.description))
    if state:
        params.append(("state", state))
    params.append(("iss", current_app.config["AUTHGATE_ISSUER"]))
    return redirect(add_params_to_uri(redirect_uri, params), 302)


@bp.route("/oauth2/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    client, redirect_uri, problem = _identify_client()
    if problem:
        return error_page(*problem)
    state = request.values.get("state")
    query = _request_query()
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
        if not max_age.isdigit():
            error = InvalidRequestError("max_age must be a whole number of seconds.")
            return _redirect_error(redirect_uri, error, state)
        if user and not signed_in_now and time.time() - browser_session.auth_time > int(max_age):
            need_login = True
    if need_login:
        if "none" in prompts:
            return _redirect_error(redirect_uri, LoginRequiredError(), state)
        rid = rid or browser.add_pending(query, client.client_id)
        return redirect(url_for("auth.login", rid=rid))

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
    browser.drop_pending(rid)
    response = authorization.create_authorization_response(grant=grant, grant_user=user)
    commit()
    return response


def _repeated_parameter():
    """RFC 6749 3.2: request parameters must not be included more than once."""
    for name in request.form:
        if len(request.form.getlist(name)) > 1:
            error = InvalidRequestError(f"The '{name}' parameter is repeated.")
            return authorization.handle_error_response(None, error)
    return None


@bp.post("/oauth2/token")
@csrf.exempt
def token():
    if (refused := _repeated_parameter()) is not None:
        return refused
    response = authorization.create_token_response()
    commit()
    return response


@bp.route("/oauth2/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    if "Authorization" not in request.headers:
        # RFC 6750 3.1: no credentials at all gets the challenge without an error code.
        return Response(status=401, headers={"WWW-Authenticate": 'Bearer realm="userinfo"'})
    return authorization.create_endpoint_response("userinfo")


@bp.post("/oauth2/introspect")
@csrf.exempt
def introspect():
    if (refused := _repeated_parameter()) is not None:
        return refused
    response = authorization.create_endpoint_response("introspection")
    commit()
    return response


@bp.post("/oauth2/revoke")
@csrf.exempt
def revoke():
    if (refused := _repeated_parameter()) is not None:
        return refused
    response = authorization.create_endpoint_response("revocation")
    commit()
    return response


def _document(body: bytes, cache_control: str, stamp=None) -> Response:
    runtime().published.publish(request.path, body, cache_control, stamp)
    return Response(body, mimetype="application/json", headers={"Cache-Control": cache_control})


@bp.get("/oauth2/jwks")
def jwks():
    ring = keyring()
    published = ring.published()
    kids = tuple(k.kid for k in published)
    documents = runtime().documents
    body = documents.get(("jwks", kids))
    if body is None:
        documents.pop(documents.get("jwks_kids"), None)
        documents["jwks_kids"] = ("jwks", kids)
        body = documents[("jwks", kids)] = json.dumps({"keys": [k.public_jwk for k in published]}).encode()
    max_age = current_app.config["AUTHGATE_JWKS_MAX_AGE"]
    return _document(body, f"public, max-age={max_age}", stamp=lambda: ring.generation)


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery():
    documents = runtime().documents
    body = documents.get("discovery")
    if body is None:
        body = documents["discovery"] = json.dumps(metadata(current_app.config["AUTHGATE_ISSUER"])).encode()
    return _document(body, "public, max-age=3600")


@bp.route("/oauth2/logout", methods=["GET", "POST"])
@csrf.exempt  # relying parties may POST here; the confirmation form checks its own token
def logout():
    g.logout_confirmed = False
    if request.method == "POST" and request.form.get("confirm") == "yes":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except CSRFValidationError:
            return error_page("Your session expired", "Please try signing out again.")
        g.logout_confirmed = True
    try:
        end_request = authorization.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return error_page("Cannot sign you out from this link", error.description or error.error)
    client = end_request.client
    wanted = request.values.get("post_logout_redirect_uri")
    if wanted and (client is None or wanted not in client.post_logout_redirect_uris):
        return error_page(
            "This return address is not registered",
            f"After signing out, the application asked to send you to {wanted}, which it has not "
            "registered as a post-logout redirect URI, so AuthGate will not send you there.",
        )
    if end_request.needs_confirmation and not g.logout_confirmed:
        return render_template("oauth/confirm_logout.html", client=client, params=request.values)
    response = authorization.create_endpoint_response("end_session", end_request)
    return response or render_template("oauth/logged_out.html", client=client)
