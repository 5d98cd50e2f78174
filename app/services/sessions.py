"""Browser sessions (one per user, client and browser) and remembered consents."""

import secrets
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import BrowserSession, Client, Consent, RefreshToken, User
from app.services import NotFound, affected, audit, transaction
from app.services.tokens.refresh import revoke_family, revoke_user_tokens

# A session's last use is written at most this often, to keep authorizations and refreshes from writing each time.
TOUCH_EVERY = timedelta(seconds=60)
USER_AGENT_CHARS = 255


def start(
    client: Client,
    user: User,
    amr: list[str],
    idp: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> BrowserSession:
    """Record a sign-in; the returned session's id goes into the signed cookie and the ID token's sid."""
    now = datetime.now(UTC)
    lifetime = timedelta(seconds=current_app.config["AUTHGATE_SESSION_LIFETIME"])
    with transaction():
        session = BrowserSession(
            id=secrets.token_urlsafe(32),
            client_pk=client.id,
            user_id=user.id,
            auth_time=int(time.time()),
            amr=amr,
            idp=idp,
            expires_at=now + lifetime,
            last_seen_at=now,
            ip=(ip or None) and ip[:45],
            user_agent=(user_agent or None) and user_agent[:USER_AGENT_CHARS],
        )
        db.session.add(session)
        user.last_login_at = now
    return session


# Built once; read on every authorization request of a signed-in browser.
_ACTIVE = (
    sa.select(BrowserSession, User)
    .join(User, User.id == BrowserSession.user_id)
    .where(BrowserSession.id == sa.bindparam("session_id"), BrowserSession.client_pk == sa.bindparam("client_pk"))
)


def find_active(session_id: str | None, client: Client) -> tuple[BrowserSession, User] | None:
    """Return the live session of this client with its user, if the user may still sign in."""
    if not session_id:
        return None
    row = db.session.execute(_ACTIVE, {"session_id": session_id, "client_pk": client.id}).first()
    if row is None:
        return None
    session, user = row
    if not is_live(session) or not user.enabled:
        return None
    if user.credentials_changed_at is not None and session.created_at <= user.credentials_changed_at:
        return None
    return session, user


def idle_timeout() -> timedelta:
    return timedelta(seconds=current_app.config["AUTHGATE_SESSION_IDLE_SECONDS"])


def is_live(session: BrowserSession | None, now: datetime | None = None) -> bool:
    """Neither ended (logout, credential change) nor expired nor idle for longer than the idle timeout."""
    if session is None or session.ended_at is not None:
        return False
    now = now or datetime.now(UTC)
    last_seen = session.last_seen_at or session.created_at
    return session.expires_at > now and last_seen + idle_timeout() > now


def find_live(session_id: str | None) -> BrowserSession | None:
    """The session if it is still live (for refresh tokens bound to it)."""
    if not session_id:
        return None
    session = db.session.get(BrowserSession, session_id)
    return session if is_live(session) else None


def _touch_due(session: BrowserSession, now: datetime) -> bool:
    """Uses are written at most once a minute per session."""
    return session.last_seen_at is None or now - session.last_seen_at >= TOUCH_EVERY


def keep_alive(session: BrowserSession) -> None:
    """`touch` as a service write of its own, for a request that writes nothing else (the console's pages)."""
    if not _touch_due(session, datetime.now(UTC)):
        return  # no empty transaction on every console page
    with transaction():
        touch(session)


def touch(session: BrowserSession) -> None:
    """Count a use of the session, in the caller's transaction; written at most once a minute."""
    now = datetime.now(UTC)
    if not _touch_due(session, now):
        return
    db.session.execute(
        sa.update(BrowserSession)
        .where(BrowserSession.id == session.id)
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    session.last_seen_at = now


def end(session_ids: list[str], client: Client | None = None) -> int:
    """End the given sessions (only those of `client`, when given); return how many were live."""
    if not session_ids:
        return 0
    query = sa.update(BrowserSession).where(BrowserSession.id.in_(session_ids), BrowserSession.ended_at.is_(None))
    if client is not None:
        query = query.where(BrowserSession.client_pk == client.id)
    with transaction():
        return affected(query.values(ended_at=datetime.now(UTC)))


def consent_covers(client: Client, user: User, scopes: list[str]) -> bool:
    consent = db.session.get(Consent, (client.id, user.id))
    return consent is not None and set(scopes) <= set(consent.scopes)


def grant_consent(client: Client, user: User, scopes: list[str]) -> None:
    """Remember that the user allowed these scopes (added to any allowed before)."""
    with transaction():
        consent = db.session.get(Consent, (client.id, user.id))
        if consent is None:
            db.session.add(Consent(client_pk=client.id, user_id=user.id, scopes=sorted(set(scopes))))
        else:
            consent.scopes = sorted(set(consent.scopes) | set(scopes))
            consent.granted_at = datetime.now(UTC)


def end_everything(user: User, reason: str) -> dict[str, int]:
    """End all of the user's sign-ins and revoke all their tokens, in the caller's transaction.

    For a credential change (new password, disabled, "sign out everywhere"): every browser session
    ends, every refresh-token family (offline ones too) and opaque access token is revoked, and
    access JWTs issued until now answer inactive (`credentials_changed_at` against their `iat`).
    """
    now = datetime.now(UTC)
    user.credentials_changed_at = now
    ended = affected(
        sa.update(BrowserSession)
        .where(BrowserSession.user_id == user.id, BrowserSession.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    revoked = revoke_user_tokens(user.id)
    audit.record(audit.SIGNED_OUT_EVERYWHERE, user=user, reason=reason, sessions=ended, families=revoked)
    return {"sessions": ended, "families": revoked}


def sign_out_everywhere(client_id: str, username: str) -> dict[str, int]:
    """The console's and the CLI's "sign out everywhere": `end_everything` as one service write."""
    from app.services.clients import get_client
    from app.services.users import get_user

    with transaction():
        return end_everything(get_user(get_client(client_id), username), "signed_out_by_admin")


# --- what the console and the CLI show of a user's sign-ins ----------------------------


def live_sessions(user: User) -> list[BrowserSession]:
    """The user's sign-ins that are neither ended, expired nor idle, newest first."""
    now = datetime.now(UTC)
    rows = db.session.scalars(
        sa.select(BrowserSession)
        .where(BrowserSession.user_id == user.id, BrowserSession.ended_at.is_(None), BrowserSession.expires_at > now)
        .order_by(BrowserSession.created_at.desc())
    )
    return [row for row in rows if is_live(row, now)]


def offline_grants(user: User) -> list[RefreshToken]:
    """The newest token of each live offline refresh-token family of the user, newest first."""
    now = datetime.now(UTC)
    rows = db.session.scalars(
        sa.select(RefreshToken)
        .where(
            RefreshToken.user_id == user.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .order_by(RefreshToken.created_at.desc())
    )
    return [row for row in rows if row.is_offline]


def consents(user: User) -> list[Consent]:
    return list(db.session.scalars(sa.select(Consent).where(Consent.user_id == user.id)))


def overview(client: Client, user: User) -> dict:
    """The user's live sessions, offline grants and consents as plain data (JSON, console)."""

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "sessions": [
            {
                "id": row.id,
                "client_id": client.client_id,
                "started_at": when(row.created_at),
                "last_seen_at": when(row.last_seen_at or row.created_at),
                "expires_at": when(row.expires_at),
                "ip": row.ip,
                "user_agent": row.user_agent,
                "amr": list(row.amr or []),
                "idp": row.idp,
            }
            for row in live_sessions(user)
        ],
        "offline_grants": [
            {
                "family": row.family_id,
                "client_id": client.client_id,
                "scope": row.scope,
                "last_used_at": when(row.created_at),
                "expires_at": when(row.expires_at),
                "ends_at": when(row.family_expires_at),
            }
            for row in offline_grants(user)
        ],
        "consents": [
            {"client_id": client.client_id, "scopes": list(row.scopes), "granted_at": when(row.granted_at)}
            for row in consents(user)
        ],
    }


def end_session_of(user: User, session_id: str) -> None:
    """End one sign-in of the user (its session-bound refresh tokens end with it)."""
    with transaction():
        if not affected(
            sa.update(BrowserSession)
            .where(
                BrowserSession.id == session_id, BrowserSession.user_id == user.id, BrowserSession.ended_at.is_(None)
            )
            .values(ended_at=datetime.now(UTC))
        ):
            raise NotFound(f"{user.username} has no live session {session_id[:8]}…")
        # The start of the id is enough to tell sessions apart; the whole id is a credential.
        audit.record(audit.SESSION_ENDED, user=user, session=session_id[:8])


def revoke_offline_grant(user: User, family_id: str) -> None:
    """Revoke one offline refresh-token family of the user with the access tokens issued with it."""
    with transaction():
        owner = db.session.scalar(sa.select(RefreshToken.user_id).where(RefreshToken.family_id == family_id).limit(1))
        if owner != user.id or not revoke_family(family_id):
            raise NotFound(f"{user.username} has no live offline grant {family_id[:8]}")
        audit.record(audit.OFFLINE_GRANT_REVOKED, user=user, family=family_id[:8])


def revoke_consent(user: User) -> None:
    """Forget what the user allowed the client; the consent page is shown again at the next sign-in."""
    with transaction():
        consent = db.session.get(Consent, (user.client_pk, user.id))
        if consent is None:
            raise NotFound(f"{user.username} has given no consent")
        audit.record(audit.CONSENT_REVOKED, user=user, scopes=list(consent.scopes))
        db.session.delete(consent)


def end_other_sessions(user: User, keep: str) -> int:
    """End every sign-in of the user but the one `keep` names (this browser's); return how many ended."""
    with transaction():
        ended = affected(
            sa.update(BrowserSession)
            .where(BrowserSession.user_id == user.id, BrowserSession.id != keep, BrowserSession.ended_at.is_(None))
            .values(ended_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        if ended:
            audit.record(audit.SESSION_ENDED, user=user, sessions=ended, kept=keep[:8])
    return ended
