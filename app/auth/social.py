"""Social sign-in pages: /login/<slug> sends the browser upstream, the callback signs the person in.

What must survive the round trip (state, nonce, PKCE verifier) is kept in the signed session
cookie, keyed by the state and bound to the pending authorization request (rid), the client
and the provider. The rules of who signs in live in app/services/social.py.

A sign-in lock (app/services/guard.py) does not stop a social sign-in: the lock is about guessing
passwords, and honouring it here would let anyone shut a user out of their Google sign-in by typing
wrong passwords for them. The link page checks a password, so it is guarded like /login.
"""

import time
from dataclasses import asdict

from flask import redirect, render_template, request, session, url_for

from app.auth import bp, browser
from app.auth.forms import LinkForm, SeparateAccountForm
from app.auth.pending import FAILED_LOGIN, finish_sign_in, no_request, pending_request, turned_away
from app.models import Client, IdentityProvider, User
from app.services import audit, committed, guard, idps, social
from app.services.client_cache import cached_client
from app.services.upstream import Profile, UpstreamError, begin

FLOWS = "social_flows"
LINK = "social_link"
MAX_FLOWS = 3
# How long the person may take at the upstream, and on the link page afterwards.
FLOW_LIFETIME = 600

# Sign-in methods for the ID token's amr (RFC 8176 has no value for a federated sign-in;
# "fed" is the one Microsoft's identity platform uses). Linking also proved the password.
AMR_FEDERATED = ["fed"]
AMR_LINKED = ["fed", "pwd"]


def _failure(title: str, message: str, status: int, rid: str | None = None):
    """A failed social sign-in: say what happened and offer the way back to the sign-in page."""
    back_url = url_for("auth.login", rid=rid) if rid and browser.get_pending(rid) else None
    return render_template("auth/social_error.html", title=title, message=message, back_url=back_url), status


def _audit_failure(client: Client | None, slug: str, reason: str) -> None:
    audit.record(audit.LOGIN_FAILED, client=client, ip=request.remote_addr, method="fed", idp=slug, reason=reason)


def _provider_unavailable(client: Client, slug: str, provider: IdentityProvider | None, rid: str):
    """The failure page for a provider the client does not have or has switched off; None when usable."""
    if provider is None:
        return _failure(
            "This sign-in option does not exist",
            f"{client.name} does not offer signing in with {slug!r}.",
            404,
            rid,
        )
    if not provider.enabled:
        _audit_failure(client, slug, "provider_disabled")
        return _failure(
            f"Signing in with {provider.name} is switched off",
            f"{client.name} does not accept {provider.name} sign-ins at the moment. Use another way to sign in.",
            403,
            rid,
        )
    return None


def _upstream_failure(client: Client, provider: IdentityProvider, error: UpstreamError, rid: str):
    _audit_failure(client, provider.slug, error.reason)
    if error.reason in ("timeout", "unreachable"):
        title = f"{provider.name} is not answering"
        hint = "Try again in a moment, or use another way to sign in."
    else:
        title = f"Signing in with {provider.name} failed"
        hint = "Try again; if it keeps failing, tell the application's administrators."
    return _failure(title, f"{error} {hint}", 502, rid)


def _save_flow(state: str, **flow) -> None:
    now = int(time.time())
    flows = {s: f for s, f in session.get(FLOWS, {}).items() if now - f["created"] < FLOW_LIFETIME}
    for old in sorted(flows, key=lambda s: flows[s]["created"])[: max(0, len(flows) - MAX_FLOWS + 1)]:
        del flows[old]
    flows[state] = {**flow, "created": now}
    session[FLOWS] = flows


def _pop_flow(state: str | None) -> dict | None:
    """Take the flow this state belongs to; each state is good for one callback."""
    flows = dict(session.get(FLOWS, {}))
    flow = flows.pop(state, None) if isinstance(state, str) else None
    if flow is not None:
        session[FLOWS] = flows
    if flow is None or time.time() - flow["created"] >= FLOW_LIFETIME:
        return None
    return flow


def _signed_in(client: Client, provider: IdentityProvider, user: User, rid: str, amr: list[str], **detail):
    return finish_sign_in(client, user, rid, amr, idp=provider.slug, **detail)


def _pending_link(rid: str, client: Client, slug: str) -> dict | None:
    """The link request this page serves, with its profile, if it is for this sign-in and fresh."""
    entry = session.get(LINK) or {}
    try:
        if (entry["rid"], entry["client_id"], entry["slug"]) != (rid, client.client_id, slug):
            return None
        if time.time() - entry["created"] >= FLOW_LIFETIME:
            return None
        return {**entry, "profile": Profile(**entry["profile"])}
    except (TypeError, KeyError):  # none, or one written by another version
        return None


@bp.get("/login/<slug>")
@committed
def social_start(slug):
    """Send the browser to the provider to sign in there."""
    found = pending_request()
    if found is None:
        return no_request()
    rid, client, _ = found
    provider = idps.find_provider(client, slug)
    if (unavailable := _provider_unavailable(client, slug, provider, rid)) is not None:
        return unavailable
    try:
        upstream = begin(provider)
    except UpstreamError as error:
        return _upstream_failure(client, provider, error, rid)
    _save_flow(
        upstream.state, rid=rid, client_id=client.client_id, slug=slug,
        nonce=upstream.nonce, verifier=upstream.code_verifier,
    )  # fmt: skip
    return redirect(upstream.url, 302)


@bp.get("/login/<slug>/callback")
@committed
def social_callback(slug):
    """Where the provider sends the browser back: check it all, then sign in, link, or explain."""
    flow = _pop_flow(request.args.get("state"))
    if flow is None or flow["slug"] != slug:
        _audit_failure(None, slug, "state_mismatch")
        return _failure(
            "This sign-in could not be verified",
            "The answer from the sign-in provider does not belong to a sign-in started in this browser, "
            "or it took too long. Go back to the application and sign in again.",
            400,
        )
    rid = flow["rid"]
    client = cached_client(flow["client_id"])
    if client is None or browser.get_pending(rid) is None:
        return no_request()
    provider = idps.find_provider(client, slug)
    if (unavailable := _provider_unavailable(client, slug, provider, rid)) is not None:
        return unavailable
    if "error" in request.args:
        error = request.args.get("error")
        _audit_failure(client, slug, "access_denied" if error == "access_denied" else "upstream_error")
        if error == "access_denied":
            return _failure(
                "Sign-in cancelled",
                f"{provider.name} did not let you in: the sign-in was cancelled or refused there.",
                403,
                rid,
            )
        return _failure(f"Signing in with {provider.name} failed", f"{provider.name} reported an error.", 502, rid)
    try:
        outcome = social.complete(client, provider, request.args.get("code"), flow["nonce"], flow["verifier"])
    except UpstreamError as error:
        return _upstream_failure(client, provider, error, rid)
    except social.SignInRefused as refused:
        _audit_failure(client, slug, refused.reason)
        return _failure(f"Cannot sign you in with {provider.name}", str(refused), 403, rid)
    if outcome.user is not None:
        detail = {"created": True} if outcome.created else {"linked": True} if outcome.linked else {}
        return _signed_in(client, provider, outcome.user, rid, AMR_FEDERATED, **detail)
    session[LINK] = {
        "rid": rid,
        "client_id": client.client_id,
        "slug": slug,
        "reason": outcome.link_reason,
        "profile": asdict(outcome.profile),
        "created": int(time.time()),
    }
    return redirect(url_for("auth.social_link", slug=slug, rid=rid), 303)


@bp.route("/login/<slug>/link", methods=["GET", "POST"])
@committed
def social_link(slug):
    """Link the upstream account to an existing one by its password, or take a separate account."""
    found = pending_request()
    if found is None:
        return no_request()
    rid, client, _ = found
    pending_link = _pending_link(rid, client, slug)
    if pending_link is None:
        return _failure(
            "This link request has expired",
            "Linking an account must follow a sign-in with the provider. Sign in again.",
            400,
            rid,
        )
    provider = idps.find_provider(client, slug)
    if (unavailable := _provider_unavailable(client, slug, provider, rid)) is not None:
        return unavailable
    profile, reason = pending_link["profile"], pending_link["reason"]
    can_create = provider.auto_create and reason == social.EMAIL_TAKEN
    form, separate = LinkForm(rid=rid), SeparateAccountForm(rid=rid)
    error = None
    if request.method == "GET":
        form.username.data = profile.email
    elif request.form.get("action") == "create":
        if can_create and separate.validate_on_submit():
            session.pop(LINK, None)
            try:
                user = social.create_account(client, provider, profile, with_email=False)
            except social.SignInRefused as refused:
                _audit_failure(client, slug, refused.reason)
                return _failure(f"Cannot sign you in with {provider.name}", str(refused), 403, rid)
            return _signed_in(client, provider, user, rid, AMR_FEDERATED, created=True)
        return _failure("Cannot create an account", "This sign-in does not offer a new account.", 400, rid)
    elif form.validate_on_submit():
        try:
            # The guard audits a failure itself (and any lock it starts).
            user, _ = social.link_with_password(
                client, provider, profile, form.username.data, form.password.data, request.remote_addr
            )
        except (guard.Throttled, guard.Busy) as refusal:
            return turned_away(refusal, url_for("auth.social_link", slug=slug, rid=rid))
        except social.SignInRefused as refused:
            _audit_failure(client, slug, refused.reason)
            return _failure(f"Cannot link your {provider.name} account", str(refused), 403, rid)
        if user is None:
            error = FAILED_LOGIN
        else:
            session.pop(LINK, None)
            return _signed_in(client, provider, user, rid, AMR_LINKED, linked=True)
    return render_template(
        "auth/social_link.html", form=form, separate=separate, client=client, provider=provider, email=profile.email,
        reason=reason, can_create=can_create, error=error, rid=rid,
    )  # fmt: skip
