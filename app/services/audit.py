"""Security events for the console and the log; never a password, secret, token or hash.

An event is added to the caller's transaction (it never commits), so a change and its record are
written together or not at all. Who made an admin change is the *actor*, set once per console
request or CLI command with `acting_as` rather than passed through every service; what people do
themselves (sign in, fail to, sign out) carries no actor: the event's user is who did it.
"""

import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import AuditEvent, Client, User
from app.services import Errors
from app.services.client_cache import find_client
from app.services.pagination import Page, paginate
from app.services.validation import fail

log = logging.getLogger("authgate.audit")

LOGIN_SUCCEEDED = "login_succeeded"
LOGIN_FAILED = "login_failed"
LOGOUT = "logout"
REFRESH_TOKEN_REUSED = "refresh_token_reused"
CODE_REPLAYED = "authorization_code_replayed"
KEYS_ROTATED = "signing_keys_rotated"
KEY_REVOKED = "signing_key_revoked"
SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
CLIENT_CREATED = "client_created"
CLIENT_UPDATED = "client_updated"
CLIENT_SECRET_ROTATED = "client_secret_rotated"
CLIENT_DELETED = "client_deleted"
ROLE_CREATED = "role_created"
ROLE_DELETED = "role_deleted"
USER_CREATED = "user_created"
USER_UPDATED = "user_updated"
USER_PASSWORD_SET = "user_password_set"
USER_ROLES_CHANGED = "user_roles_changed"
USER_DELETED = "user_deleted"
USER_REGISTERED = "user_registered"
VERIFICATION_SENT = "email_verification_sent"
EMAIL_VERIFIED = "email_verified"
PASSWORD_RESET_SENT = "password_reset_sent"
PASSWORD_RESET_THROTTLED = "password_reset_throttled"
SESSION_ENDED = "session_ended"
OFFLINE_GRANT_REVOKED = "offline_grant_revoked"
CONSENT_REVOKED = "consent_revoked"
IDP_CREATED = "idp_created"
IDP_UPDATED = "idp_updated"
IDP_DELETED = "idp_deleted"

UNKNOWN_ACCOUNT = "(unknown account)"
ACTOR_CHARS = 120

_actor: ContextVar[str | None] = ContextVar("authgate_audit_actor", default=None)


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Record the events of the block as made by `actor` ("admin:alice", "cli:root")."""
    token = _actor.set(actor[:ACTOR_CHARS])
    try:
        yield
    finally:
        _actor.reset(token)


def record(
    kind: str,
    *,
    client: Client | None = None,
    user: User | None = None,
    username: str | None = None,
    ip: str | None = None,
    **detail,
) -> AuditEvent:
    """Add an event to the caller's transaction and log it; a user's event belongs to the user's client."""
    event = AuditEvent(
        kind=kind,
        client_pk=client.id if client else (user.client_pk if user else None),
        user_id=user.id if user else None,
        username=(username or (user.username if user else None) or None),
        ip=ip,
        actor=_actor.get(),
        detail=detail,
    )
    db.session.add(event)
    log.info(
        "%s client=%s user=%s ip=%s actor=%s %s",
        kind,
        client.client_id if client else "-",
        event.username or "-",
        ip or "-",
        event.actor or "-",
        " ".join(f"{k}={v}" for k, v in sorted(detail.items())),
    )
    return event


def _blank(value) -> bool:
    return value is None or value in ("", [], {})


def changes(before: dict, after: dict, opaque: Collection[str] = ()) -> dict:
    """What differs between two views of an object: `{field: [old, new]}`, blank to blank left out.

    An `opaque` field (a secret, a hash, a key set) is never written down: only whether it was
    "set", "changed" or "removed".
    """
    found: dict = {}
    for name, new in after.items():
        old = before.get(name)
        if old == new or (_blank(old) and _blank(new)):
            continue
        if name in opaque:
            found[name] = "set" if _blank(old) else "removed" if _blank(new) else "changed"
        else:
            found[name] = [old, new]
    return found


def shown_username(event: AuditEvent) -> str | None:
    """The username to show: a failed sign-in's only when it names an account (it then has the user's id).

    Older rows kept whatever was typed at a sign-in, which may be a password typed into the
    username box: never shown. The same rule as `_names_account`, which the user filter uses.
    """
    if event.kind == LOGIN_FAILED and event.user_id is None:
        return UNKNOWN_ACCOUNT
    return event.username


def recent_with_clients(kinds: tuple[str, ...], limit: int = 20) -> list[tuple[AuditEvent, str | None]]:
    """The latest events of these kinds, each with its client_id (None once the client is gone), in one query."""
    query = (
        sa.select(AuditEvent, Client.client_id)
        .outerjoin(Client, Client.id == AuditEvent.client_pk)
        .where(AuditEvent.kind.in_(kinds))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    return [(event, client_id) for event, client_id in db.session.execute(query)]


# --- the audit log: filters and pages --------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the audit log is narrowed to; None is "any"."""

    client: Client | None = None
    username: str | None = None
    kind: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def kinds() -> list[str]:
    """The kinds of event the log holds, so a new kind is offered as soon as it is recorded."""
    return list(db.session.scalars(sa.select(AuditEvent.kind).distinct().order_by(AuditEvent.kind)))


def check_time(value: str, end_of_day: bool = False) -> datetime:
    """A UTC time typed as 2026-12-01 14:30[:15] (or with a T, or a Z); a bare date is its start, or its end."""
    text = value.strip()
    try:
        return datetime.combine(date.fromisoformat(text), time.max if end_of_day else time.min, UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        fail("must be a UTC date and time such as 2026-12-01 14:30")
    if parsed.utcoffset() not in (None, timedelta(0)):
        fail("is read as UTC: leave out the time zone")
    return parsed.replace(tzinfo=UTC)


def _check_client(value: str) -> Client:
    client = find_client(value.strip())
    if client is None:
        fail(f"there is no client {value.strip()!r}")
    return client


def _check_text(value: str, limit: int) -> str:
    value = value.strip()
    if len(value) > limit:
        fail(f"must be at most {limit} characters")
    if "\x00" in value:
        fail("must not contain a NUL character")
    return value


def parse_filters(args: Mapping[str, str], known_kinds: list[str]) -> tuple[Filters, dict[str, str]]:
    """Read the filters a person typed; a wrong one is left out and explained in the errors, by field.

    `known_kinds` is `kinds()`, which the caller also offers as the choices.
    """
    errors = Errors()
    given = {name: (args.get(name) or "").strip() for name in ("client", "user", "kind", "actor", "from", "to")}
    found: dict = {}
    if given["client"]:
        found["client"] = errors.check("client", _check_client, given["client"])
    if given["user"]:
        found["username"] = errors.check("user", _check_text, given["user"], 254)
    if given["kind"]:
        if given["kind"] in known_kinds:
            found["kind"] = given["kind"]
        else:
            errors.add("kind", "choose one of the kinds in the list")
    if given["actor"]:
        found["actor"] = errors.check("actor", _check_text, given["actor"], ACTOR_CHARS)
    if given["from"]:
        found["since"] = errors.check("from", check_time, given["from"])
    if given["to"]:
        found["until"] = errors.check("to", check_time, given["to"], True)
    if found.get("since") and found.get("until") and found["until"] < found["since"]:
        errors.add("to", "must not be before From")
        del found["until"]
    return Filters(**{name: value for name, value in found.items() if value is not None}), errors.errors


def _names_account() -> sa.ColumnElement[bool]:
    """`shown_username`'s rule in SQL: what was once typed at an unknown account is never matched, as never shown."""
    return sa.or_(AuditEvent.kind != LOGIN_FAILED, AuditEvent.user_id.is_not(None))


def search(filters: Filters, page: int = 1, per_page: int = 50) -> Page:
    """One page of the events that match, newest first, each with its client (one query for the rows)."""
    query = sa.select(AuditEvent).options(joinedload(AuditEvent.client)).order_by(AuditEvent.id.desc())
    if filters.client is not None:
        query = query.where(AuditEvent.client_pk == filters.client.id)
    if filters.username:
        query = query.where(sa.func.lower(AuditEvent.username) == filters.username.lower(), _names_account())
    if filters.kind:
        query = query.where(AuditEvent.kind == filters.kind)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.since:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.at <= filters.until)
    return paginate(query, page, per_page)
