"""Signing out: the hosted /logout page and RP-initiated logout at /oauth2/logout."""

from authlib.oauth2 import OAuth2Error
from flask import g, render_template, request
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError as CSRFValidationError

from app.auth import bp, browser
from app.auth.forms import LogoutForm
from app.auth.pending import error_page
from app.extensions import authorization, csrf
from app.services import audit, committed, sessions


@bp.route("/logout", methods=["GET", "POST"])
@committed
def logout():
    """Sign out of every application in this browser."""
    form = LogoutForm()
    if form.validate_on_submit():
        ended = sessions.end(browser.forget_all_logins())
        if ended:
            audit.record(audit.LOGOUT, ip=request.remote_addr, sessions=ended)
        return render_template("auth/logged_out.html", client=None)
    return render_template("auth/logout.html", form=form)


def _end_browser_sessions(end_request) -> None:
    """End the sign-ins a validated logout names: this browser's to the client, or all in this browser.

    Only this browser's: a hint's `sid` never ends a session by itself, since a link carrying
    someone's ID token must not sign them out elsewhere.
    """
    client = end_request.client
    if client is None:
        sessions.end(browser.forget_all_logins())
        return
    session_id = browser.forget_login(client)
    if session_id:
        sessions.end([session_id], client)


def _hint_is_this_browsers(end_request) -> bool:
    """Whether the ID token hint names the user signed in to its client in this browser (and this sign-in).

    Only then is signing out without asking safe: any valid ID token of the client (the
    attacker's own, another user's) would otherwise sign the victim out from a link. An expired
    ID token still identifies its user (RP-Initiated Logout 1.0, section 2).
    """
    claims = end_request.id_token_claims
    client = end_request.client
    if not claims or client is None:
        return False
    found = browser.current_login(client)
    if found is None:
        return False
    signed_in, user = found
    sid = claims.get("sid")
    return claims.get("sub") == user.sub and (sid is None or sid == signed_in.id)


@bp.route("/oauth2/logout", methods=["GET", "POST"])
@csrf.exempt  # relying parties may POST here; the confirmation form checks its own token
@committed
def end_session():
    """RP-initiated logout: Authlib validates the request, this page confirms and signs out."""
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
    if not g.logout_confirmed and not _hint_is_this_browsers(end_request):
        # The form names the client the hint resolved to; it does not carry the hint itself.
        params = request.values.to_dict()
        if client is not None:
            params["client_id"] = client.client_id
        return render_template("auth/confirm_logout.html", client=client, params=params)
    _end_browser_sessions(end_request)
    response = authorization.create_endpoint_response("end_session", end_request)
    return response or render_template("auth/logged_out.html", client=client)
