"""Security events for the console and the log; never a password, secret, token or hash.

An event is added to the caller's transaction (it never commits), so a change and its record are
written together or not at all. Who made an admin change is the *actor*, set once per console
request or CLI command with `acting_as` rather than passed through every service; what people do
themselves (sign in, fail to, sign out) carries no actor: the event's user is who did it.
"""

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Client, User

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
    """The username to show: a failed sign-in's typed name only when it names an account.

    Older rows kept whatever was typed at an unknown account, which may be a password typed into
    the username box: never shown.
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
