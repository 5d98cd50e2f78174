"""What every hosted page of a sign-in shares: the parked authorization request it serves, and its error pages."""

import math
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from flask import redirect, render_template, request, url_for

from app.auth import browser, mfa
from app.models import Client, User
from app.services import audit, guard, sessions
from app.services.client_cache import cached_client

FAILED_LOGIN = "Invalid username or password."


def pending_request() -> tuple[str, Client, dict] | None:
    """The parked authorization request this page serves, with its client and parameters."""
    rid = request.values.get("rid")
    pending = browser.get_pending(rid)
    if rid is None or pending is None:
        return None
    client = cached_client(pending["client_id"])
    if client is None:
        return None
    params = {k: v[0] for k, v in parse_qs(pending["query"]).items()}
    return rid, client, params


def error_page(title: str, message: str, status: int = 400):
    """A browser-facing error: explain it, never redirect."""
    return render_template("error.html", title=title, message=message), status


def no_request():
    return error_page(
        "Start from your application",
        "This page is part of signing in to an application, and that sign-in has "
        "expired or was never started. Go back to the application and sign in again.",
    )


def refusal_text(refusal: guard.Throttled | guard.Busy, what: str = "Too many attempts.") -> tuple[str, int, str]:
    """How a page says the guard refused (`what` was refused, and when to try again): title, status, message."""
    if isinstance(refusal, guard.Busy):
        return "Try again in a moment", 503, "The sign-in service is busy; try again in a moment."
    minutes = math.ceil(refusal.retry_after / 60)
    # The minute after the wait ends, so trying again at the time shown is never too early.
    until = datetime.now(UTC) + timedelta(seconds=refusal.retry_after, minutes=1)
    plural = "" if minutes == 1 else "s"
    return "Too many attempts", 429, f"{what} Try again in {minutes} minute{plural} (at {until:%H:%M} UTC)."


def turned_away(refusal: guard.Throttled | guard.Busy, retry_url: str):
    """The answer to a password attempt the guard refused: when to try again, and the way back to the form.

    A locked name and a throttled address get the same words, so the page never tells whether an
    account exists; the pending request stays, so `retry_url` leads back to the same form.
    """
    title, status, message = refusal_text(refusal)
    page = render_template("auth/try_later.html", title=title, message=message, retry_url=retry_url)
    return page, status, {"Retry-After": str(refusal.retry_after)}


def finish_sign_in(client: Client, user: User, rid: str, amr: list[str], idp: str | None = None, **detail):
    """Record a successful sign-in, start its session, and send the browser back to its pending request.

    A client that requires a verified email gets no session for a user without one: the browser is
    sent to a page that says so and can send the verification link again.
    """
    if client.require_verified_email and not user.email_verified:
        audit.record(
            audit.LOGIN_FAILED, client=client, user=user, ip=request.remote_addr, method="fed" if idp else "pwd",
            reason="email_not_verified", **({"idp": idp} if idp else {}),
        )  # fmt: skip
        browser.await_verification(client, user, rid, why="sign_in")
        return redirect(url_for("auth.check_inbox"), 303)
    if (second_step := mfa.hold(client, user, rid, amr, idp, detail)) is not None:
        return second_step
    # The event is committed with the session row: one transaction for the sign-in.
    audit.record(
        audit.LOGIN_SUCCEEDED, client=client, user=user, ip=request.remote_addr, method="fed" if idp else "pwd",
        **({"idp": idp} if idp else {}), **detail,
    )  # fmt: skip
    browser_session = sessions.start(
        client, user, amr=amr, idp=idp, ip=request.remote_addr, user_agent=request.user_agent.string
    )
    browser.remember_login(client, browser_session)
    browser.mark_pending(rid, login_at=int(time.time()))
    return redirect(browser.resume_url(rid), 303)
