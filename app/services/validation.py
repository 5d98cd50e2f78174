"""Field checks that more than one service uses.

Each check takes raw input (a form's string, a CLI option, JSON) and returns the normalised
value, or raises ValidationError with the reason; the caller files the reason under its field
(`Errors.check`).
"""

import re
from typing import NoReturn
from urllib.parse import urlsplit

from app.services import ValidationError

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# RFC 6749 scope-token: NQCHAR, i.e. printable ASCII without space, '"' and '\'.
SCOPE_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,64}$")
# RFC 8252 private-use schemes for native apps are reverse domain names (com.example.app).
PRIVATE_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+-]*(?:\.[a-z0-9+-]+)+$")


def fail(reason: str) -> NoReturn:
    raise ValidationError("value", reason)


def library_reason(exc: Exception) -> str:
    """A library's message as a reason, without its closing full stop: the console and the CLI end
    each reason with one themselves ("must have an @-sign.." otherwise)."""
    return str(exc).rstrip(". ")


def as_list(value) -> list[str]:
    """A list from a list, or from a string of comma- or space-separated items; blanks dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(v).strip() for v in value if str(v).strip()]


def unique(values: list[str]) -> list[str]:
    """The values without repeats, in their first order."""
    return list(dict.fromkeys(values))


def check_text(value, max_length: int, required: str | None = None) -> str:
    """Stripped text of at most `max_length` characters; `required` is the reason given when it is empty."""
    value = (value or "").strip()
    if not value and required:
        fail(required)
    if len(value) > max_length:
        fail(f"must be at most {max_length} characters")
    return value


def check_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "y"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", "n", ""):
        return False
    fail("must be true or false")


def check_seconds(value, low: int, high: int, unit_hint: str) -> int:
    """A whole number of seconds from `low` to `high`; `unit_hint` says the range in words."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        fail("must be a whole number of seconds")
    if not low <= number <= high:
        fail(f"must be between {low} and {high} seconds ({unit_hint})")
    return number


def choice(options):
    """A check that the value is one of `options`."""

    def check(value) -> str:
        if value not in options:
            fail(f"must be one of {', '.join(options)}")
        return value

    return check


def check_scopes(value) -> list[str]:
    scopes = unique(as_list(value))
    for scope in scopes:
        if not SCOPE_RE.match(scope):
            fail(f"{scope!r} is not a valid scope: up to 64 printable characters, no quotes")
    return scopes


def check_redirect_uri(uri: str) -> str:
    """One exact redirect URI: https, http on a loopback host, or a native app's private-use scheme."""
    if len(uri) > 2000:
        fail("must be at most 2000 characters")
    if any(c.isspace() for c in uri) or "*" in uri:
        fail(f"{uri!r} must be one exact URI without spaces or wildcards")
    parts = urlsplit(uri)
    if not parts.scheme:
        fail(f"{uri!r} must be an absolute URI (https://...)")
    if parts.fragment or uri.endswith("#"):
        fail(f"{uri!r} must not contain a fragment (#...)")
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            fail(f"{uri!r} must name a host")
        if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            fail(f"{uri!r}: plain http is only allowed for localhost and 127.0.0.1; use https")
    elif not PRIVATE_SCHEME_RE.match(scheme):
        fail(
            f"{uri!r}: use https, http on localhost, or an app scheme "
            "in reverse-domain form (com.example.app:/callback)"
        )
    return uri


def check_redirect_uris(value) -> list[str]:
    if isinstance(value, str):
        value = value.split()
    return unique([check_redirect_uri(uri) for uri in as_list(value)])


def check_base_url(value) -> str:
    """A server's base URL: https, or http on a loopback host (development and tests)."""
    value = (value or "").strip()
    if not value:
        fail("is required")
    if len(value) > 500 or any(c.isspace() for c in value):
        fail("must be one URL of at most 500 characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"{value!r} must be an absolute https URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        fail(f"{value!r}: plain http is only allowed for localhost and 127.0.0.1; use https")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        fail(f"{value!r} must not have a query or fragment")
    return value
