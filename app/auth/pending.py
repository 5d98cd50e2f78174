"""What every hosted page of a sign-in shares: the parked authorization request it serves, and its error pages."""

from urllib.parse import parse_qs

from flask import render_template, request

from app.auth import browser
from app.models import Client
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
