"""Self-service pages: register, verify an email address, and reset a forgotten password.

/register and /forgot belong to a pending authorization request (`rid`), like /login, so the user
ends up back at the application. The emailed links (/verify/<token>, /reset/<token>) carry that
rid too, but work in any browser: a GET only shows a page (mail scanners fetch links), the button
on it POSTs with a CSRF token, and the rid only adds a way back when it is live in this browser.
The rules live in app/services/selfservice.py.
"""

from flask import current_app, redirect, render_template, request, url_for

from app.auth import bp, browser
from app.auth.forms import ForgotForm, RegisterForm, ResendForm, ResetForm, VerifyForm, show_errors
from app.auth.pending import error_page, finish_sign_in, no_request, pending_request, turned_away
from app.extensions import db
from app.models import Client, User
from app.models.link import RESET_PASSWORD, VERIFY_EMAIL
from app.services import ValidationError, committed, guard, mail
from app.services import selfservice as service
from app.services import users as user_service
from app.services.client_cache import cached_client

AMR_PASSWORD = ["pwd"]
MAIL_FAILED = "The email could not be sent. Try again in a few minutes."


def _live_rid(client: Client | None) -> str | None:
    """The `rid` of the query when it names a pending request of this client in this browser."""
    rid = request.args.get("rid")
    pending = browser.get_pending(rid)
    if client is None or pending is None or pending["client_id"] != client.client_id:
        return None
    return rid


def _login_url(rid: str | None) -> str | None:
    return url_for("auth.login", rid=rid) if rid and browser.get_pending(rid) else None


def _link_invalid(purpose: str):
    """The one answer for an unknown, used, expired or superseded link (and, for a reset, a way to a new one)."""
    rid = request.args.get("rid")
    forgot_url = url_for("auth.forgot", rid=rid) if purpose == RESET_PASSWORD and browser.get_pending(rid) else None
    return render_template("auth/link_invalid.html", message=str(service.LinkInvalid()), forgot_url=forgot_url), 400


def _closed(client: Client, what: str):
    if what == "register":
        return error_page("Registration is closed", f"{client.name} does not let people create an account here. "
                          "Ask its administrators for one.", 403)  # fmt: skip
    return error_page(
        "Password reset is not available",
        f"This server cannot send email, so a forgotten password cannot be reset here. Ask the administrators "
        f"of {client.name} to set a new one.",
        403,
    )


def _also_check(form, checks: dict) -> None:
    """When the form's own checks failed, add the service's reasons for the other fields: all errors show at once."""
    for name, check in checks.items():
        if not form[name].errors and form[name].data:
            try:
                check(form[name].data)
            except ValidationError as error:
                show_errors(form, error)


# --- registration -----------------------------------------------------------------------------


@bp.route("/register", methods=["GET", "POST"])
@committed
def register():
    """Create an account for the pending request's client, then verify its email or sign in."""
    found = pending_request()
    if found is None:
        return no_request()
    rid, client, _ = found
    if not service.registration_open(client):
        return _closed(client, "register")
    form = RegisterForm(rid=rid)
    if form.validate_on_submit():
        try:
            user = service.register(
                client, request.remote_addr, username=form.username.data, email=form.email.data,
                password=form.password.data, first_name=form.first_name.data or "", last_name=form.last_name.data or "",
            )  # fmt: skip
        except guard.Throttled as refusal:
            return turned_away(refusal, url_for("auth.register", rid=rid))
        except ValidationError as error:
            if "registration" in error.errors:
                return _closed(client, "register")
            show_errors(form, error)
        else:
            return _registered(client, user, rid)
    elif form.is_submitted():
        _also_check(form, {
            "username": user_service.check_username,
            "email": user_service.check_email,
            "password": lambda password: user_service.check_password(password, form.username.data),
        })  # fmt: skip
    return render_template("auth/register.html", form=form, client=client, login_url=url_for("auth.login", rid=rid))


def _registered(client: Client, user: User, rid: str):
    """Send the new account its verification link; sign it in unless the client wants the address verified first.

    The account stays whatever the mail server says: the inbox page tells and offers to send again.
    """
    sent = _send(client, user, rid)
    if client.require_verified_email:
        browser.await_verification(client, user, rid, why="registered", sent=sent)
        return redirect(url_for("auth.check_inbox"), 303)
    signed_in = finish_sign_in(client, user, rid, amr=AMR_PASSWORD, registered=True)
    if sent == "sent":
        return signed_in
    browser.await_verification(client, user, rid, why="registered", sent=sent, signed_in=True)
    return redirect(url_for("auth.check_inbox"), 303)


def _send(client: Client, user: User, rid: str | None) -> str:
    """Send the verification link; return "sent", "failed" (the mail server) or "throttled"."""
    try:
        service.send_verification(client, user, rid=rid)
    except (mail.MailFailed, mail.MailUnavailable):
        return "failed"
    except guard.Throttled:
        return "throttled"
    return "sent"


def _awaiting() -> tuple[dict, Client, User] | None:
    """The account this browser registered or signed in as, still waiting for its email to be verified."""
    entry = browser.awaiting_verification()
    if entry is None:
        return None
    client = cached_client(entry["client_id"])
    user = db.session.get(User, entry["user_id"]) if client else None
    if client is None or user is None or user.client_pk != client.id or not user.enabled:
        return None
    return entry, client, user


@bp.route("/verify-email", methods=["GET", "POST"])
@committed
def check_inbox():
    """ "Check your inbox" after registering, or "verify your email first" after signing in: send the link again."""
    found = _awaiting()
    if found is None:
        return no_request()
    entry, client, user = found
    rid = entry["rid"]
    form = ResendForm()
    if not user.email_verified and user.email and form.validate_on_submit():
        try:
            service.send_verification(client, user, rid=rid)
        except guard.Throttled as refusal:
            return turned_away(refusal, url_for("auth.check_inbox"))
        except (mail.MailFailed, mail.MailUnavailable):
            browser.mark_awaiting(sent="failed")
        else:
            browser.mark_awaiting(sent="resent")
        return redirect(url_for("auth.check_inbox"), 303)
    live = rid and browser.get_pending(rid)
    continue_url = None
    if live and entry.get("signed_in"):
        continue_url = browser.resume_url(rid)
    elif live and user.email_verified:
        continue_url = url_for("auth.login", rid=rid)
    return render_template(
        "auth/check_inbox.html", form=form, client=client, user=user, entry=entry, continue_url=continue_url,
        mail_error=MAIL_FAILED,
    )  # fmt: skip


# --- the verification link --------------------------------------------------------------------


@bp.route("/verify/<token>", methods=["GET", "POST"])
@committed
def verify(token):
    """Show the verification page (GET changes nothing: mail scanners fetch links); the button verifies."""
    found = service.peek(token, VERIFY_EMAIL)
    if found is None:
        return _link_invalid(VERIFY_EMAIL)
    link, user, client = found
    rid = _live_rid(client)
    form = VerifyForm(rid=rid)
    if form.validate_on_submit():
        try:
            user, client = service.verify_email(token)
        except service.LinkInvalid:
            return _link_invalid(VERIFY_EMAIL)
        except ValidationError as error:
            return error_page("This address cannot be verified", f"{error.reason[:1].upper()}{error.reason[1:]}.")
        browser.remember_done("verified", client)
        return redirect(url_for("auth.verified", rid=rid), 303)
    return render_template("auth/verify.html", form=form, client=client, user=user, email=link.email)


@bp.get("/verify/done")
def verified():
    client = cached_client(browser.last_done("verified") or "")
    if client is None:
        return error_page("Nothing to show", "This page follows verifying an email address.", 404)
    rid = _live_rid(client)
    return render_template("auth/verified.html", client=client, continue_url=_login_url(rid))


# --- password reset ---------------------------------------------------------------------------


@bp.route("/forgot", methods=["GET", "POST"])
@committed
def forgot():
    """Ask for a reset link; the answer is the same whether or not the name means an account."""
    found = pending_request()
    if found is None:
        return no_request()
    rid, client, _ = found
    if not service.reset_available():
        return _closed(client, "reset")
    form = ForgotForm(rid=rid)
    if form.validate_on_submit():
        try:
            service.request_reset(client, form.login.data, request.remote_addr, rid=rid)
        except guard.Throttled as refusal:
            return turned_away(refusal, url_for("auth.forgot", rid=rid))
        except mail.MailUnavailable:
            return _closed(client, "reset")
        return redirect(url_for("auth.forgot_sent", rid=rid), 303)
    return render_template("auth/forgot.html", form=form, client=client, login_url=url_for("auth.login", rid=rid))


@bp.get("/forgot/sent")
def forgot_sent():
    found = pending_request()
    if found is None:
        return no_request()
    rid, client, _ = found
    return render_template(
        "auth/forgot_sent.html", client=client, login_url=url_for("auth.login", rid=rid),
        minutes=current_app.config["AUTHGATE_RESET_LINK_MINUTES"],
    )  # fmt: skip


@bp.route("/reset/<token>", methods=["GET", "POST"])
@committed
def reset(token):
    """Choose a new password with an emailed link; it ends the user's sessions and refresh tokens."""
    found = service.peek(token, RESET_PASSWORD)
    if found is None:
        return _link_invalid(RESET_PASSWORD)
    _, user, client = found
    rid = _live_rid(client)
    form = ResetForm(rid=rid)
    if form.validate_on_submit():
        try:
            _, client = service.reset_password(token, form.password.data)
        except service.LinkInvalid:
            return _link_invalid(RESET_PASSWORD)
        except ValidationError as error:
            show_errors(form, error)
        else:
            browser.remember_done("reset", client)
            return redirect(url_for("auth.password_changed", rid=rid), 303)
    elif form.is_submitted():
        _also_check(form, {"password": lambda password: user_service.check_password(password, user.username)})
    return render_template("auth/reset.html", form=form, client=client, user=user)


@bp.get("/reset/done")
def password_changed():
    client = cached_client(browser.last_done("reset") or "")
    if client is None:
        return error_page("Nothing to show", "This page follows choosing a new password.", 404)
    return render_template("auth/password_changed.html", client=client, login_url=_login_url(_live_rid(client)))
