"""The sign-in and consent pages of a pending authorization request."""

from flask import redirect, render_template, request, url_for

from app.auth import bp, browser
from app.auth.forms import ConsentForm, LoginForm
from app.auth.pending import FAILED_LOGIN, finish_sign_in, no_request, pending_request, turned_away
from app.services import committed, guard, idps, selfservice, sessions
from app.services import users as user_service

SCOPE_TEXT = {
    "openid": "Know who you are (your account ID)",
    "profile": "See your name and username",
    "email": "See your email address",
    "roles": "See the roles you hold in this application",
    "offline_access": "Stay signed in and act for you when you are away",
}


@bp.route("/login", methods=["GET", "POST"])
@committed
def login():
    found = pending_request()
    if found is None:
        return no_request()
    rid, client, params = found
    form = LoginForm(rid=rid)
    error = None
    if request.method == "GET" and params.get("login_hint"):
        form.username.data = params["login_hint"]
    if form.validate_on_submit():
        login_name, password = form.username.data, form.password.data
        try:
            # The guard audits a failure itself (and any lock it starts).
            user, _ = guard.password_attempt(
                client, login_name, request.remote_addr, lambda: user_service.authenticate(client, login_name, password)
            )
        except (guard.Throttled, guard.Busy) as refusal:
            return turned_away(refusal, url_for("auth.login", rid=rid))
        if user is None:
            error = FAILED_LOGIN
        else:
            return finish_sign_in(client, user, rid, amr=["pwd"])
    providers = idps.enabled_providers(client)
    return render_template(
        "auth/login.html", form=form, client=client, error=error, providers=providers,
        can_reset=selfservice.reset_available(), can_register=selfservice.registration_open(client),
    )  # fmt: skip


@bp.route("/consent", methods=["GET", "POST"])
@committed
def consent():
    found = pending_request()
    if found is None:
        return no_request()
    rid, client, params = found
    signed_in = browser.current_login(client)
    if signed_in is None:
        return redirect(url_for("auth.login", rid=rid))
    _, user = signed_in
    scope = client.get_allowed_scope(params.get("scope")) or ""
    scopes = scope.split()
    form = ConsentForm(rid=rid)
    if form.validate_on_submit():
        decision = request.form.get("decision")
        if decision == "allow":
            sessions.grant_consent(client, user, scopes)
            browser.mark_pending(rid, consented=True)
        elif decision == "deny":
            browser.mark_pending(rid, denied=True)
        else:
            return render_template("auth/consent.html", form=form, client=client, user=user,
                                   scopes=[(s, SCOPE_TEXT.get(s, s)) for s in scopes],
                                   error="Choose Allow or Deny."), 400  # fmt: skip
        return redirect(browser.resume_url(rid), 303)
    return render_template(
        "auth/consent.html",
        form=form,
        client=client,
        user=user,
        scopes=[(s, SCOPE_TEXT.get(s, s)) for s in scopes],
    )
