"""Security events for the console and the log; never a password, secret or token."""

import logging

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


def record(
    kind: str,
    *,
    client: Client | None = None,
    user: User | None = None,
    username: str | None = None,
    ip: str | None = None,
    **detail,
) -> AuditEvent:
    """Add an event to the caller's transaction and log it."""
    event = AuditEvent(
        kind=kind,
        client_pk=client.id if client else None,
        user_id=user.id if user else None,
        username=(username or (user.username if user else None) or None),
        ip=ip,
        detail=detail,
    )
    db.session.add(event)
    log.info(
        "%s client=%s user=%s ip=%s %s",
        kind,
        client.client_id if client else "-",
        event.username or "-",
        ip or "-",
        " ".join(f"{k}={v}" for k, v in sorted(detail.items())),
    )
    return event


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
