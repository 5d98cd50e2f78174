"""What a request's parameters must be before the protocol reads them, and error text built from them."""

from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from werkzeug.datastructures import MultiDict

# How much of a value sent by the caller an error description quotes.
QUOTED_MAX = 40


def has_nul(text: str) -> bool:
    # PostgreSQL text cannot hold NUL: a query with one fails instead of finding nothing.
    return "\x00" in text


def has_surrogate(text: str) -> bool:
    """Whether `text` holds a lone surrogate, which a JSON escape ("\\ud800") can produce.

    It has no UTF-8 form, so no database can be asked about it: the query fails instead of finding nothing.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def error_text(text: str) -> str:
    """`text` with the characters RFC 6749 forbids in error_description (and so Authlib refuses) replaced by '?'."""
    # OAuth2Error raises ValueError for such a description, and `"`, `\` or non-ASCII text from a
    # caller (a parameter's name, a JOSE header's value) would otherwise turn a 400 into a 500.
    forbidden = set(invalid_error_characters(text))
    return "".join("?" if c in forbidden else c for c in text) if forbidden else text


def quoted(value: str) -> str:
    """A caller's value for an error description: shortened, in quotes, only allowed characters."""
    short = value if len(value) <= QUOTED_MAX else value[:QUOTED_MAX] + "..."
    return error_text(f"'{short}'")


def malformed(values: MultiDict, once: MultiDict | None = None) -> InvalidRequestError | None:
    """The error for parameters no valid request has: a NUL anywhere, or a parameter of `once` sent twice."""
    # RFC 6749 3.1 and 3.2: request parameters must not be included more than once.
    if once is not None:
        for name in once:
            if len(once.getlist(name)) > 1:
                return InvalidRequestError(f"The {quoted(name)} parameter is repeated.")
    for name, value in values.items(multi=True):
        if has_nul(name) or has_nul(value):
            return InvalidRequestError(f"The {quoted(name)} parameter holds a NUL character.")
    return None
