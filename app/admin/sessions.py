"""Console: a user's sign-ins, offline grants and consent, each revocable, and "sign out everywhere"."""

from flask import abort

from app.admin import bp
from app.admin.forms import ConsoleForm
from app.admin.people import saved, user_or_404, user_page
from app.admin.ui import INVALID
from app.admin.views import client_or_404
from app.extensions import db
from app.services import NotFound
from app.services import sessions as session_service


def _session_action(client_id, username, act, message: str):
    """Run one revocation of the user page's sessions block after checking its CSRF token."""
    client = client_or_404(client_id)
    user = user_or_404(client, username)
    form = ConsoleForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        act(user)
    except NotFound as exc:
        form.form_errors.append(f"{exc}.")
        return user_page(client, user, {"sessions": form}, status=INVALID)
    db.session.expire(user)
    return saved(client, user, "sessions", message)


@bp.post("/clients/<client_id>/users/<username>/sessions/<session_id>/end")
def user_session_end(client_id, username, session_id):
    return _session_action(
        client_id, username, lambda user: session_service.end_session_of(user, session_id), "Session ended."
    )


@bp.post("/clients/<client_id>/users/<username>/offline/<family>/revoke")
def user_offline_revoke(client_id, username, family):
    return _session_action(
        client_id, username, lambda user: session_service.revoke_offline_grant(user, family), "Offline grant revoked."
    )


@bp.post("/clients/<client_id>/users/<username>/consent/revoke")
def user_consent_revoke(client_id, username):
    return _session_action(client_id, username, session_service.revoke_consent, "Consent revoked.")


@bp.post("/clients/<client_id>/users/<username>/sign-out")
def user_sign_out(client_id, username):
    return _session_action(
        client_id,
        username,
        lambda user: session_service.sign_out_everywhere(client_id, user.username),
        "Signed out everywhere: every session ended and every token revoked.",
    )
