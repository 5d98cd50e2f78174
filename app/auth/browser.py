"""What the signed session cookie holds for the hosted pages: per-client sign-ins and pending requests.

A sign-in is per client: the cookie maps client_id to the id of a server-side session row, so
logout can end it and a user of one client is never signed in to another. A pending
authorization request waits in the cookie while the user signs in or consents; the marks it
collects (signed in at, consented, denied) only count for that exact request. A sign-in started
by one of our own pages (the account page) waits the same way, with the path to return to.
"""

import secrets
import time
from urllib.parse import unquote, urlencode, urlsplit

from flask import current_app, flash, redirect, session, url_for

from app.models import BrowserSession, Client, User
from app.services import sessions

LOGINS = "logins"
PENDING = "pending"
MAX_PENDING = 5
PENDING_LIFETIME = 1800
# Browsers drop a cookie over about 4 KB: the parked queries together stay under this many characters.
MAX_PENDING_CHARS = 2500
# The only pages a sign-in may return to, other than the authorization endpoint.
NEXT_PREFIX = "/account/"


def current_login(client: Client) -> tuple[BrowserSession, User] | None:
    """The live sign-in to this client in this browser, if any."""
    session_id = session.get(LOGINS, {}).get(client.client_id)
    found = sessions.find_active(session_id, client)
    if found is None and session_id:
        forget_login(client)
    return found


def remember_login(client: Client, browser_session: BrowserSession) -> None:
    logins = dict(session.get(LOGINS, {}))
    logins[client.client_id] = browser_session.id
    session[LOGINS] = logins
    session.permanent = True


def forget_login(client: Client) -> str | None:
    """Drop the client's sign-in from the cookie; return its session id."""
    logins = dict(session.get(LOGINS, {}))
    session_id = logins.pop(client.client_id, None)
    session[LOGINS] = logins
    return session_id


def forget_all_logins() -> list[str]:
    session_ids = list(session.get(LOGINS, {}).values())
    session[LOGINS] = {}
    return session_ids


def safe_next(path: str | None) -> str | None:
    """The path if it is one of our own account pages, else None: a sign-in never leads to another site."""
    if not isinstance(path, str) or not path.startswith(NEXT_PREFIX) or len(path) > 400:
        return None
    if "//" in path or "\\" in path or any(ord(c) < 0x21 or ord(c) == 0x7F for c in path):
        return None
    # A browser resolves "..", also written as "%2e%2e", before it asks: /account/../admin is /admin.
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        return None
    parts = urlsplit(path)
    return path if not parts.scheme and not parts.netloc else None


def add_pending(query: str, client_id: str, next_path: str | None = None) -> str:
    """Park an authorization request (its query string) and return its id.

    With `next_path` (one of our own account pages) the sign-in resumes there instead of at the
    authorization endpoint; the query is then empty.
    """
    if next_path is not None and safe_next(next_path) is None:
        raise ValueError(f"not a path a sign-in may return to: {next_path!r}")
    now = int(time.time())
    pending = {rid: item for rid, item in session.get(PENDING, {}).items() if now - item["created"] < PENDING_LIFETIME}
    # Keep the cookie small: only the newest few requests (one per open tab, say).
    for rid in sorted(pending, key=lambda r: pending[r]["created"])[: max(0, len(pending) - MAX_PENDING + 1)]:
        del pending[rid]
    rid = secrets.token_urlsafe(12)
    # The oldest requests give way while the queries would not fit in the cookie.
    while pending and len(query) + sum(len(item["query"]) for item in pending.values()) > MAX_PENDING_CHARS:
        del pending[min(pending, key=lambda r: pending[r]["created"])]
    pending[rid] = {"query": query, "client_id": client_id, "created": now}
    if next_path is not None:
        pending[rid]["next"] = next_path
    session[PENDING] = pending
    return rid


def get_pending(rid: str | None) -> dict | None:
    if not rid:
        return None
    item = session.get(PENDING, {}).get(rid)
    if item is None or time.time() - item["created"] >= PENDING_LIFETIME:
        return None
    return item


def mark_pending(rid: str, **marks) -> None:
    pending = dict(session.get(PENDING, {}))
    if rid in pending:
        pending[rid] = {**pending[rid], **marks}
        session[PENDING] = pending


def drop_pending(rid: str | None) -> None:
    pending = dict(session.get(PENDING, {}))
    if rid and pending.pop(rid, None) is not None:
        session[PENDING] = pending


def resume_url(rid: str) -> str:
    """Where the browser goes to continue a pending authorization request (or the page that started a sign-in)."""
    item = get_pending(rid) or {"query": ""}
    if (next_path := safe_next(item.get("next"))) is not None:
        return next_path
    query = item["query"]
    return url_for("auth.authorize") + "?" + (query + "&" if query else "") + f"rid={rid}"


# --- self-service: the account waiting for its email to be verified, and the last step done ------

AWAITING = "awaiting_verification"
DONE = "selfservice_done"
AWAITING_LIFETIME = 1800


def await_verification(client: Client, user: User, rid: str | None, why: str, **marks) -> None:
    """Remember the account this browser just registered, or signed in as without a verified email.

    Only a browser that proved the account (created it, or typed its password) gets this entry, so
    only it can have the verification link sent again.
    """
    session[AWAITING] = {
        "client_id": client.client_id, "user_id": user.id, "rid": rid, "why": why, "created": int(time.time()), **marks,
    }  # fmt: skip


def awaiting_verification() -> dict | None:
    entry = session.get(AWAITING)
    if not isinstance(entry, dict) or time.time() - entry.get("created", 0) >= AWAITING_LIFETIME:
        return None
    return entry


def mark_awaiting(**marks) -> None:
    entry = awaiting_verification()
    if entry is not None:
        session[AWAITING] = {**entry, **marks}


def remember_done(what: str, client: Client) -> None:
    """Remember what a link just did (for the page the browser is sent to next)."""
    session[DONE] = {"what": what, "client_id": client.client_id, "created": int(time.time())}


def last_done(what: str) -> str | None:
    """The client_id of the last `what` ("verified", "reset") this browser did, if recent."""
    entry = session.get(DONE)
    if not isinstance(entry, dict) or entry.get("what") != what or time.time() - entry["created"] >= AWAITING_LIFETIME:
        return None
    return entry["client_id"]


SIGN_IN_AGAIN = "For your security, sign in again to {what}."


def sign_in_again(client: Client, user: User, browser_session: BrowserSession, what: str):
    """None when this browser's sign-in is recent enough for a sensitive change; else the way to sign in again.

    Someone who finds a signed-in browser must not be able to take the account over (a new email
    address, their own second factor, an unlinked provider): such changes need a sign-in of the last
    AUTHGATE_RECENT_SIGN_IN_SECONDS, with every factor the user has. The sign-in comes back here.
    """
    age = time.time() - browser_session.auth_time
    if age <= current_app.config["AUTHGATE_RECENT_SIGN_IN_SECONDS"]:
        return None
    flash(SIGN_IN_AGAIN.format(what=what), "info")
    here = url_for("auth.account", client_id=client.client_id)
    rid = add_pending(urlencode({"login_hint": user.username}), client.client_id, next_path=here)
    return redirect(url_for("auth.login", rid=rid), 303)
