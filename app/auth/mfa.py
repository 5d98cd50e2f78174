"""Second factors on the hosted pages: the second sign-in step, enrolment a policy forces, step-up, passkeys,
and the account page's factor management under /account/<client_id>/factors.

A half-done sign-in (the first factor proved, the second not yet) waits in the pending request's
marks in the signed cookie, for HALF_LIFETIME seconds: the user it is for, the methods proved so
far, and for a step-up the session it will raise. Nothing reaches the application before the
second step completes.
"""

from __future__ import annotations

import base64
import contextlib
import time
from urllib.parse import parse_qs

from flask import abort, jsonify, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

# pending calls `hold` from finish_sign_in, so it is imported as a module (the two import each other).
from app.auth import bp, browser, pending
from app.auth.forms import no_nul
from app.extensions import db
from app.models import BrowserSession, Client, User
from app.runtime import runtime
from app.services import NotFound, ServiceError, ValidationError, committed, guard
from app.services import mfa as mfa_service
from app.services import passkeys as passkey_service
from app.services.client_cache import cached_client

HALF = "half"
# How long the second step may take after the password.
HALF_LIFETIME = 300
CEREMONY = "webauthn"
CEREMONY_LIFETIME = 300
SHOWN_CODES = "recovery_codes"


class CodeForm(FlaskForm):
    rid = HiddenField()
    code = StringField(
        "Code",
        validators=[DataRequired("Enter the code from your authenticator app."), Length(max=32), no_nul],
        render_kw={
            "autocomplete": "one-time-code",
            "autofocus": True,
            "spellcheck": "false",
            "autocapitalize": "off",
            "inputmode": "text",
        },
    )


class ContinueForm(FlaskForm):
    rid = HiddenField()


class ActionForm(FlaskForm):
    """A button on the account page: CSRF only."""


# --- what the sign-in and authorization pages call -----------------------------------------------


def _acr_values(rid: str | None) -> str | None:
    item = browser.get_pending(rid)
    if item is None:
        return None
    return (parse_qs(item["query"]).get("acr_values") or [None])[0]


def hold(client: Client, user: User, rid: str, amr: list[str], idp: str | None, detail: dict):
    """Called first by finish_sign_in: send the browser to the second step when the sign-in needs one."""
    need = mfa_service.requirement(client, user, amr, _acr_values(rid), signing_in=True)
    if need is None:
        return None
    half = {"user": user.id, "amr": amr, "idp": idp, "detail": detail, "at": int(time.time())}
    browser.mark_pending(rid, **{HALF: half})
    return redirect(_step_url(need, rid), 303)


def step_up_needed(client: Client, browser_session: BrowserSession, user: User) -> str | None:
    """For the authorization endpoint: whether a live session must still prove (or enrol) a second factor."""
    amr = list(browser_session.amr or [])
    return mfa_service.requirement(client, user, amr, request.values.get("acr_values"), signing_in=False)


def step_up(need: str, browser_session: BrowserSession, user: User, rid: str):
    """Send a signed-in browser to the second step; completing it raises the session's amr and auth_time."""
    half = {"user": user.id, "amr": list(browser_session.amr or []), "session": browser_session.id}
    browser.mark_pending(rid, **{HALF: {**half, "at": int(time.time())}})
    return redirect(_step_url(need, rid))


def _step_url(need: str, rid: str) -> str:
    return url_for("auth.second_factor" if need == mfa_service.VERIFY else "auth.second_factor_enrol", rid=rid)


def _half_done() -> tuple[str, Client, User, dict] | None:
    """The half-done sign-in this page completes: its request id, client, user and marks."""
    found = pending.pending_request()
    if found is None:
        return None
    rid, client, _ = found
    half = (browser.get_pending(rid) or {}).get(HALF)
    if not half or time.time() - half["at"] >= HALF_LIFETIME:
        return None
    user = db.session.get(User, half["user"])
    if user is None or user.client_pk != client.id or not user.enabled:
        return None
    return rid, client, user, half


def _expired():
    return pending.error_page(
        "Sign in again",
        "The sign-in took too long or was already completed. Go back to the application and sign in again.",
    )


def _finish(client: Client, user: User, rid: str, half: dict, methods: list[str]):
    """Complete the sign-in with the second factor's methods: start its session, or raise the one stepped up."""
    amr = mfa_service.with_second_factor(half["amr"], methods)
    browser.mark_pending(rid, **{HALF: None})
    if half.get("session"):
        current = browser.current_login(client)
        if current is None or current[0].id != half["session"]:
            return _expired()
        mfa_service.step_up_session(client, user, current[0], amr)
        browser.mark_pending(rid, login_at=int(time.time()))
        return redirect(browser.resume_url(rid), 303)
    detail = {**(half.get("detail") or {}), "second_factor": methods[0]}
    return pending.finish_sign_in(client, user, rid, amr=amr, idp=half.get("idp"), **detail)


# --- the second step -------------------------------------------------------------------------------


@bp.route("/second-factor", methods=["GET", "POST"])
@committed
def second_factor():
    found = _half_done()
    if found is None:
        return _expired() if pending.pending_request() else pending.no_request()
    rid, client, user, half = found
    form = CodeForm(rid=rid)
    factors = mfa_service.factors_of(user)
    if form.validate_on_submit():
        try:
            methods = mfa_service.verify_code(client, user, form.code.data, request.remote_addr)
        except guard.Throttled as refusal:
            return pending.turned_away(refusal, url_for("auth.second_factor", rid=rid))
        except mfa_service.CodeRefused as refused:
            form.code.errors = [str(refused)]
        else:
            return _finish(client, user, rid, half, methods)
    status = 400 if form.errors else 200
    return render_template("auth/mfa_verify.html", form=form, client=client, user=user, factors=factors), status


@bp.route("/second-factor/enrol", methods=["GET", "POST"])
@committed
def second_factor_enrol():
    found = _half_done()
    if found is None:
        return _expired() if pending.pending_request() else pending.no_request()
    rid, client, user, half = found
    if mfa_service.has_factor(user):
        return redirect(url_for("auth.second_factor", rid=rid))
    form = CodeForm(rid=rid)
    if form.validate_on_submit():
        try:
            codes = mfa_service.confirm_totp(client, user, form.code.data)
        except ValidationError as error:
            form.code.errors = [error.reason]
        else:
            session[SHOWN_CODES] = codes
            browser.mark_pending(rid, **{HALF: {**half, "proved": ["otp"], "at": int(time.time())}})
            return redirect(url_for("auth.second_factor_codes", rid=rid), 303)
    secret = mfa_service.enrolling_secret(user) or mfa_service.start_totp(client, user)
    uri = mfa_service.provisioning_uri(client, user, secret)
    return render_template(
        "auth/mfa_enrol.html", form=form, client=client, user=user, secret=secret, uri=uri,
        qr=mfa_service.qr_svg(uri), action=url_for("auth.second_factor_enrol", rid=rid), signing_in=True,
    ), (400 if form.errors else 200)  # fmt: skip


@bp.route("/second-factor/recovery-codes", methods=["GET", "POST"])
@committed
def second_factor_codes():
    found = _half_done()
    if found is None or not found[3].get("proved"):
        return _expired() if pending.pending_request() else pending.no_request()
    rid, client, user, half = found
    form = ContinueForm(rid=rid)
    if form.validate_on_submit():
        session.pop(SHOWN_CODES, None)
        return _finish(client, user, rid, half, half["proved"])
    codes = session.pop(SHOWN_CODES, None)
    return render_template(
        "auth/mfa_codes.html", client=client, codes=codes, form=form,
        action=url_for("auth.second_factor_codes", rid=rid), signing_in=True,
    )  # fmt: skip


# --- passkey ceremonies (JSON, called by static/authgate-passkeys.js) ------------------------------


def _begin(purpose: str, options_json: str, challenge: bytes):
    session[CEREMONY] = {
        "purpose": purpose,
        "challenge": base64.urlsafe_b64encode(challenge).decode(),
        "at": int(time.time()),
    }
    return options_json, 200, {"Content-Type": "application/json", "Cache-Control": "no-store"}


def _challenge(purpose: str) -> bytes | None:
    """The challenge of this ceremony, used up: a second answer to it finds nothing."""
    ceremony = session.pop(CEREMONY, None)
    if not ceremony or ceremony["purpose"] != purpose or time.time() - ceremony["at"] >= CEREMONY_LIFETIME:
        return None
    # The cookie cannot forget what an old copy of it still holds: the guard's counters (shared by
    # every worker through Redis) remember each challenge answered, so an answer cannot be replayed.
    if runtime().guard.spend("passkey-challenge", 1, CEREMONY_LIFETIME, ceremony["challenge"]) is not None:
        return None
    return base64.urlsafe_b64decode(ceremony["challenge"])


def _refused(message: str, status: int = 400):
    return jsonify(error=message), status


def _json_body() -> dict:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _landing(response) -> dict:
    """A redirect as JSON for the script: where the browser goes next."""
    return {"redirect": response.headers["Location"]} if response.status_code in (302, 303) else {}


@bp.route("/second-factor/passkey/options", methods=["POST"])
@committed
def second_factor_passkey_options():
    found = _half_done()
    if found is None:
        return _refused("The sign-in expired. Go back to the application and sign in again.")
    rid, _, user, _ = found
    return _begin(f"second:{rid}", *passkey_service.authentication_options(user))


@bp.route("/second-factor/passkey", methods=["POST"])
@committed
def second_factor_passkey():
    found = _half_done()
    if found is None:
        return _refused("The sign-in expired. Go back to the application and sign in again.")
    rid, client, user, half = found
    challenge = _challenge(f"second:{rid}")
    if challenge is None:
        return _refused("The passkey prompt expired. Try again.")
    try:
        _, methods = passkey_service.authenticate(client, _json_body().get("credential"), challenge, user)
    except ServiceError as error:
        return _refused(str(error))
    response = _finish(client, user, rid, half, methods)
    return jsonify(_landing(response)) if response.status_code in (302, 303) else response


@bp.route("/passkey/login/options", methods=["POST"])
@committed
def passkey_login_options():
    found = pending.pending_request()
    if found is None or not mfa_service.offered(found[1]):
        return _refused("Go back to the application and sign in again.")
    return _begin(f"passwordless:{found[0]}", *passkey_service.authentication_options(None))


@bp.route("/passkey/login", methods=["POST"])
@committed
def passkey_login():
    """Passwordless sign-in: a discoverable passkey with user verification proves two factors at once."""
    found = pending.pending_request()
    if found is None or not mfa_service.offered(found[1]):
        return _refused("Go back to the application and sign in again.")
    rid, client, _ = found
    challenge = _challenge(f"passwordless:{rid}")
    if challenge is None:
        return _refused("The passkey prompt expired. Try again.")
    try:
        user, methods = passkey_service.authenticate(client, _json_body().get("credential"), challenge)
    except ServiceError as error:
        return _refused(str(error))
    if client.require_verified_email and not user.email_verified:
        return _refused("Verify your email address before signing in.")
    response = pending.finish_sign_in(client, user, rid, amr=[*methods, "mfa"], passkey=True)
    return jsonify(_landing(response))


# --- the account page's second factors -------------------------------------------------------------


def _account_user(client_id: str) -> tuple[Client, User] | None:
    client = cached_client(client_id)
    if client is None:
        abort(404)
    signed_in = browser.current_login(client)
    return (client, signed_in[1]) if signed_in else None


def _sign_in_again(client: Client, user: User, what: str = "change your second factors"):
    """None for a recent sign-in; else the way to sign in again (see browser.sign_in_again)."""
    signed_in = browser.current_login(client)
    assert signed_in is not None
    return browser.sign_in_again(client, user, signed_in[0], what)


def _factors_url(client: Client) -> str:
    """Where a change of factors lands: the account page's "Second factors" section."""
    return url_for("auth.account", client_id=client.client_id, _anchor="mfa-factors-title")


def _sign_in_first(client_id: str):
    # The account page signs the person in through the client's own login first.
    return redirect(f"/account/{client_id}")


@bp.route("/account/<client_id>/factors")
@committed
def account_factors(client_id):
    found = _account_user(client_id)
    if found is None:
        return _sign_in_first(client_id)
    client, user = found
    return render_template(
        "auth/mfa_account.html", client=client, user=user, factors=mfa_service.account_context(client, user),
        form=ActionForm(),
    )  # fmt: skip


@bp.route("/account/<client_id>/factors/totp", methods=["GET", "POST"])
@committed
def account_totp(client_id):
    found = _account_user(client_id)
    if found is None:
        return _sign_in_first(client_id)
    client, user = found
    if not mfa_service.offered(client):
        abort(404)
    form = CodeForm()
    if request.method == "POST" and (again := _sign_in_again(client, user)):
        return again
    if request.method == "POST" and "code" not in request.form:
        # "Set up an authenticator app": a new secret, shown on the GET that follows.
        if ActionForm().validate_on_submit():
            with contextlib.suppress(ValidationError):  # already set up: the GET shows the account page
                mfa_service.start_totp(client, user)
        return redirect(url_for("auth.account_totp", client_id=client_id), 303)
    if form.validate_on_submit():
        try:
            codes = mfa_service.confirm_totp(client, user, form.code.data)
        except ValidationError as error:
            form.code.errors = [error.reason]
        else:
            session[SHOWN_CODES] = codes
            return redirect(url_for("auth.account_codes", client_id=client_id), 303)
    secret = mfa_service.enrolling_secret(user)
    if secret is None:
        return redirect(_factors_url(client), 303)
    uri = mfa_service.provisioning_uri(client, user, secret)
    return render_template(
        "auth/mfa_enrol.html", form=form, client=client, user=user, secret=secret, uri=uri,
        qr=mfa_service.qr_svg(uri), action=url_for("auth.account_totp", client_id=client_id), signing_in=False,
        back_url=_factors_url(client),
    ), (400 if form.errors else 200)  # fmt: skip


@bp.route("/account/<client_id>/factors/totp/remove", methods=["POST"])
@committed
def account_totp_remove(client_id):
    found = _account_user(client_id)
    if found is None:
        return _sign_in_first(client_id)
    client, user = found
    if again := _sign_in_again(client, user):
        return again
    if ActionForm().validate_on_submit():
        mfa_service.remove_totp(client, user)
    return redirect(_factors_url(client), 303)


@bp.route("/account/<client_id>/factors/recovery-codes", methods=["GET", "POST"])
@committed
def account_codes(client_id):
    found = _account_user(client_id)
    if found is None:
        return _sign_in_first(client_id)
    client, user = found
    if request.method == "POST" and (again := _sign_in_again(client, user, "make new recovery codes")):
        return again
    if request.method == "POST":
        if ActionForm().validate_on_submit():
            try:
                session[SHOWN_CODES] = mfa_service.new_recovery_codes(client, user)
            except ValidationError:
                return redirect(_factors_url(client), 303)
        return redirect(url_for("auth.account_codes", client_id=client_id), 303)
    codes = session.pop(SHOWN_CODES, None)
    if not codes:
        return redirect(_factors_url(client), 303)
    return render_template(
        "auth/mfa_codes.html", client=client, codes=codes, signing_in=False, back_url=_factors_url(client)
    )


@bp.route("/account/<client_id>/factors/passkeys/options", methods=["POST"])
@committed
def account_passkey_options(client_id):
    found = _account_user(client_id)
    if found is None or not mfa_service.offered(found[0]):
        return _refused("Sign in to your account again.", 403)
    client, user = found
    if _sign_in_again(client, user, "add a passkey") is not None:
        # The script shows this; reloading the page leads to the sign-in.
        return _refused("For your security, sign in again to add a passkey: reload this page.", 403)
    return _begin(f"register:{client.client_id}:{user.id}", *passkey_service.registration_options(client, user))


@bp.route("/account/<client_id>/factors/passkeys", methods=["POST"])
@committed
def account_passkey_register(client_id):
    found = _account_user(client_id)
    if found is None or not mfa_service.offered(found[0]):
        return _refused("Sign in to your account again.", 403)
    client, user = found
    challenge = _challenge(f"register:{client.client_id}:{user.id}")
    if challenge is None:
        return _refused("The passkey prompt expired. Try again.")
    body = _json_body()
    try:
        passkey_service.register(client, user, body.get("credential"), challenge, body.get("name"))
    except ServiceError as error:
        return _refused(error.reason if isinstance(error, ValidationError) else str(error))
    if not mfa_service.factors_of(user).recovery_left:
        # A first factor comes with recovery codes, as an authenticator app does: a lost passkey
        # must not lock its owner out.
        session[SHOWN_CODES] = mfa_service.new_recovery_codes(client, user)
        return jsonify(redirect=url_for("auth.account_codes", client_id=client.client_id)), 201
    return jsonify(redirect=_factors_url(client)), 201


@bp.route("/account/<client_id>/factors/passkeys/<int:passkey_id>/remove", methods=["POST"])
@committed
def account_passkey_remove(client_id, passkey_id):
    found = _account_user(client_id)
    if found is None:
        return _sign_in_first(client_id)
    client, user = found
    if again := _sign_in_again(client, user, "remove a passkey"):
        return again
    if ActionForm().validate_on_submit():
        try:
            passkey_service.remove(client, user, passkey_id)
        except NotFound:
            abort(404)
    return redirect(_factors_url(client), 303)
