"""How console views answer: a whole page, or the block of it that an HTMX request targets."""

from datetime import UTC, datetime

from flask import Response, current_app, redirect, render_template, request, session
from jinja2_fragments.flask import render_block
from werkzeug.wrappers import Response as BaseResponse

from app.services.crypto import decrypt, encrypt

# The status of a page re-shown with errors next to its fields; admin.js lets HTMX swap it in.
INVALID = 422


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def page(template: str, fragments: tuple[str, ...] = (), status: int = 200, **context):
    """Render the page, or only its block named like the element an HTMX request targets."""
    target = request.headers.get("HX-Target") if is_htmx() else None
    if target and target in fragments:
        return render_block(template, target, **context), status
    return render_template(template, **context), status


def see_other(url: str) -> BaseResponse:
    """Redirect after a POST: 303 for a plain form; HTMX is told to load the page instead."""
    if is_htmx():
        return Response(status=200, headers={"HX-Redirect": url})
    return redirect(url, 303)


# --- a new secret, carried from the POST that made it to the page that shows it once ---------

SECRET_KEY = "admin_new_secret"
SECRET_PURPOSE = b"console-new-secret"


def hand_over_secret(client_id: str, secret: str | None) -> None:
    """Keep a just-made secret (encrypted) in the session until the next page shows it."""
    if secret:
        sealed = encrypt(secret, current_app.config["SECRET_KEY"], SECRET_PURPOSE)
        session[SECRET_KEY] = {"client_id": client_id, "secret": sealed}


def take_secret(client_id: str) -> str | None:
    """Return the client's just-made secret once; it is gone from the session afterwards."""
    held = session.get(SECRET_KEY)
    if not held or held.get("client_id") != client_id:
        return None
    session.pop(SECRET_KEY)
    return decrypt(held["secret"], current_app.config["SECRET_KEY"], SECRET_PURPOSE)


def duration(seconds) -> str:
    """3600 -> "1 hour"; what a lifetime in seconds means, for the hint under the field."""
    try:
        seconds = int(seconds)
    except (TypeError, ValueError):
        return ""
    if seconds <= 0:
        return ""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def utc(value, seconds: bool = False) -> str:
    """A time as every console page shows it, "2026-12-01 18:04 UTC", from a datetime or an ISO string.

    The zone is always written out: an admin elsewhere than UTC must not read it as local time.
    """
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
