"""The signed-in user's own account page for one client, /account/<client_id>.

Signed in means this browser's sign-in to that client (`browser.current_login`), made by the
hosted login: without one, the page parks a sign-in that returns here and sends the browser to
/login. Every form posts to its own URL and answers with a 303 back to the page and a message,
or with the page again and the error next to the field. Whatever a form names (a session, a
linked account) is looked up among the signed-in user's own, so nothing of anyone else is reachable.
"""

import re

from flask import flash, redirect, render_template, request, url_for

from app.auth import bp, browser
from app.auth.forms import AccountActionForm, EmailForm, PasswordChangeForm, ProfileForm, sentence, show_errors
from app.auth.pending import error_page, refusal_text
from app.models import BrowserSession, Client, User
from app.services import NotFound, ValidationError, committed, guard, identities, mail, mfa, selfservice, sessions
from app.services.client_cache import find_client

INVALID = 422
PASSWORD_CHANGED = "Password changed; you were signed out everywhere else."
TOO_MANY_EMAILS = "Too many emails were sent to this account."


class Account:
    """The page's subject: the client, this browser's sign-in to it and its user."""

    def __init__(self, client: Client, browser_session: BrowserSession, user: User):
        self.client = client
        self.browser_session = browser_session
        self.user = user

    @property
    def url(self) -> str:
        return url_for("auth.account", client_id=self.client.client_id)


def _not_found():
    return error_page("Page not found", "There is no account page at this address.", 404)


def _account(client_id: str) -> Account | object:
    """The signed-in account of this client, or the answer to give instead (404, or off to sign in)."""
    client = find_client(client_id)
    if client is None or "authorization_code" not in (client.grant_types or []):
        return _not_found()  # a machine-to-machine client has no users who sign in
    found = browser.current_login(client)
    if found is None:
        here = url_for("auth.account", client_id=client.client_id)
        rid = browser.add_pending("", client.client_id, next_path=here)
        return redirect(url_for("auth.login", rid=rid), 303 if request.method == "POST" else 302)
    return Account(client, *found)


def _try_later(refusal: guard.Throttled | guard.Busy, what: str = "Too many attempts.") -> tuple[str, int, dict]:
    """What a refusal of the guard says on this page, its status and Retry-After."""
    _, status, message = refusal_text(refusal, what)
    return message, status, {"Retry-After": str(refusal.retry_after)}


# Browser and system names in a User-Agent, most specific first (Edge and Opera also say Chrome).
_BROWSERS = [("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
_SYSTEMS = [
    ("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("CrOS", "ChromeOS"),
    ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Linux", "Linux"),
]  # fmt: skip


def browser_name(user_agent: str | None) -> str:
    """ "Firefox on Windows" for a User-Agent string; what it is shown as in the list of sessions."""
    if not user_agent:
        return "Unknown browser"
    name = next((label for mark, label in _BROWSERS if mark in user_agent), None)
    system = next((label for mark, label in _SYSTEMS if mark in user_agent), None)
    if name and system:
        return f"{name} on {system}"
    # Not a browser we know (a script, a test client): its own first word.
    return name or system or re.split(r"[\s;(]", user_agent.strip(), maxsplit=1)[0][:40] or "Unknown browser"


def _page(account: Account, status: int = 200, headers: dict | None = None, **forms):
    """The account page, with the forms given (holding what was typed and its errors) and fresh others."""
    user, client = account.user, account.client
    profile = forms.get("profile") or ProfileForm(formdata=None, first_name=user.first_name, last_name=user.last_name)
    linked = identities.list_identities(user)
    live = sessions.live_sessions(user)
    # This browser's session first, then the others newest first.
    live.sort(key=lambda s: s.id != account.browser_session.id)
    page = render_template(
        "auth/account.html",
        client=client,
        user=user,
        account=account,
        profile=profile,
        email_form=forms.get("email") or EmailForm(formdata=None),
        email_error=forms.get("email_error"),
        password_form=forms.get("password") or PasswordChangeForm(formdata=None),
        action=AccountActionForm(),
        pending_email=selfservice.pending_email(user),
        mail_unavailable=mail.unavailable_reason(),
        linked=linked,
        unlink_error=forms.get("unlink_error"),
        sessions=[(s, browser_name(s.user_agent)) for s in live],
        this_session=account.browser_session.id,
        factors=mfa.account_context(client, user),
    )
    return page, status, headers or {}


def _back(account: Account, message: str, category: str = "success"):
    flash(message, category)
    return redirect(account.url, 303)


@bp.get("/account/<client_id>")
@committed
def account(client_id):
    found = _account(client_id)
    if not isinstance(found, Account):
        return found
    sessions.keep_alive(found.browser_session)  # using the account page is activity of its sign-in
    return _page(found)


@bp.post("/account/<client_id>/profile")
@committed
def account_profile(client_id):
    found = _account(client_id)
    if not isinstance(found, Account):
        return found
    form = ProfileForm()
    if form.validate_on_submit():
        try:
            selfservice.update_profile(found.client, found.user, form.first_name.data, form.last_name.data)
        except ValidationError as error:
            show_errors(form, error)
        else:
            return _back(found, "Your name was saved.")
    return _page(found, INVALID, profile=form)


@bp.post("/account/<client_id>/email")
@committed
def account_email(client_id):
    found = _account(client_id)
    if not isinstance(found, Account):
        return found
    form = EmailForm()
    if form.validate_on_submit():
        if again := browser.sign_in_again(found.client, found.user, found.browser_session, "change your email address"):
            return again
        try:
            address = selfservice.request_email_change(found.client, found.user, form.email.data)
        except ValidationError as error:
            show_errors(form, error)
        except (mail.MailFailed, mail.MailUnavailable) as error:
            return _page(found, 503, email=form, email_error=str(error))
        except guard.Throttled as refusal:
            message, status, headers = _try_later(refusal, TOO_MANY_EMAILS)
            return _page(found, status, headers, email=form, email_error=message)
        else:
            return _back(found, f"We sent a link to {address}. Your address changes when you open it.")
    return _page(found, INVALID, email=form)


@bp.post("/account/<client_id>/email/resend")
@committed
def account_email_resend(client_id):
    found = _account(client_id)
    if not isinstance(found, Account):
        return found
    if not AccountActionForm().validate_on_submit():
        return _page(found, INVALID, email_error="This form has expired; reload the page and try again.")
    if found.user.email_verified or not found.user.email:
        return _back(found, "Your email address is verified already.")
    try:
        selfservice.send_verification(found.client, found.user)
    except (mail.MailFailed, mail.MailUnavailable) as error:
        return _page(found, 503, email_error=str(error))
    except guard.Throttled as refusal:
        message, status, headers = _try_later(refusal, TOO_MANY_EMAILS)
        return _page(found, status, headers, email_error=message)
    return _back(found, f"We sent a new verification link to {found.user.email}.")


@bp.post("/account/<client_id>/password")
@committed
def account_password(client_id):
    found = _account(client_id)
    if not isinstance(found, Account):
        return found
    if found.user.password_hash is None:
        return _not_found()  # no password to change: the page offers no form
    form = PasswordChangeForm()
    if form.validate_on_submit():
        client, user = found.client, found.user
        try:
            # The guard counts a wrong current password like a failed sign-in (and audits it).
            selfservice.change_password(
                client, user, form.current_password.data, form.password.data, request.remote_addr
            )
        except ValidationError as error:
            show_errors(form, error)
        except (guard.Throttled, guard.Busy) as refusal:
            message, status, headers = _try_later(refusal)
            form.form_errors.append(message)
            return _page(found, status, headers, password=form)
        else:
            # The change ended every sign-in of the user, this one too: this browser starts a new one.
            # It keeps the methods this browser's sign-in proved (a second factor too): the password was one.
            amr = list(found.browser_session.amr or ["pwd"])
            fresh = sessions.start(client, user, amr=amr, ip=request.remote_addr, user_agent=request.user_agent.string)
            browser.remember_login(client, fresh)
            return _back(found, PASSWORD_CHANGED)
    return _page(found, INVALID, password=form)


@bp.post("/account/<client_id>/linked/<slug>/unlink")
@committed
def account_unlink(client_id, slug):
    found = _account(client_id)
    if not isinstance(found, Account):
        return found
    if not AccountActionForm().validate_on_submit():
        return _page(found, INVALID, unlink_error="This form has expired; reload the page and try again.")
    if again := browser.sign_in_again(found.client, found.user, found.browser_session, "unlink an account"):
        return again
    try:
        provider = selfservice.unlink_identity(found.client, found.user, slug)
    except NotFound:
        return _not_found()
    except ValidationError as error:
        return _page(found, 409, unlink_error=sentence("", error.reason))
    return _back(found, f"Your {provider.name} account is no longer linked.")


@bp.post("/account/<client_id>/sessions/<session_id>/end")
@committed
def account_end_session(client_id, session_id):
    found = _account(client_id)
    if not isinstance(found, Account):
        return found
    if not AccountActionForm().validate_on_submit():
        return _page(found, INVALID)
    try:
        sessions.end_session_of(found.user, session_id)
    except NotFound:
        return _not_found()
    if session_id == found.browser_session.id:
        browser.forget_login(found.client)
        return redirect(found.url, 303)  # signed out here: the page asks to sign in again
    return _back(found, "That session was signed out.")


@bp.post("/account/<client_id>/sessions/end-others")
@committed
def account_end_other_sessions(client_id):
    found = _account(client_id)
    if not isinstance(found, Account):
        return found
    if not AccountActionForm().validate_on_submit():
        return _page(found, INVALID)
    ended = sessions.end_other_sessions(found.user, keep=found.browser_session.id)
    if not ended:
        return _back(found, "You were not signed in anywhere else.")
    return _back(found, f"Signed out of {ended} other session{'' if ended == 1 else 's'}.")
