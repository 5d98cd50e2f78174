"""What end users do for themselves: register, verify their email, reset or change their password.

The emailed links are one-time tokens (`LinkToken`): random, stored as SHA-256, bound to one user
and one purpose, single-use (settled by `UPDATE … WHERE used_at IS NULL`), expiring, and dead once
a newer link of the same purpose is sent; a reset link dies with any change of password, a
verification link with any change of email. Nothing here tells whether an account exists: a reset
request is answered the same way, at the same speed, for any name (the outbox does the work).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import Client, IdentityProvider, LinkToken, User
from app.models.link import RESET_PASSWORD, VERIFY_EMAIL
from app.services import NotFound, ServiceError, ValidationError, affected, audit, guard, identities, mail, transaction
from app.services import users as user_service
from app.services.client_cache import find_client
from app.services.crypto import sha256_hex
from app.services.roles import default_role_names

LINK_PREFIX = "agl_"

REGISTRATION_OFF = "Registration is not open for this application."


class LinkInvalid(ServiceError):
    """The link is unknown, used, expired or superseded; the page says so in one message."""

    def __init__(self):
        super().__init__("This link is invalid or has expired. Ask for a new one.")


# --- settings ----------------------------------------------------------------------------------


def registration_open(client: Client) -> bool:
    """Whether the client's login page offers registration (it needs mail, for the verification link)."""
    return client.allow_registration and mail.available()


def reset_available() -> bool:
    return mail.available()


# --- links -------------------------------------------------------------------------------------


def _lifetime(purpose: str) -> timedelta:
    if purpose == RESET_PASSWORD:
        return timedelta(minutes=current_app.config["AUTHGATE_RESET_LINK_MINUTES"])
    return timedelta(hours=current_app.config["AUTHGATE_VERIFY_LINK_HOURS"])


def _issue(user: User, purpose: str, email: str) -> str:
    """Add a new link for the user (in the caller's transaction), ending their older ones of this purpose."""
    forget_links(user, purpose)
    token = LINK_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    db.session.add(
        LinkToken(
            token_hash=sha256_hex(token),
            client_pk=user.client_pk,
            user_id=user.id,
            purpose=purpose,
            email=email,
            created_at=now,
            expires_at=now + _lifetime(purpose),
        )
    )
    return token


def forget_links(user: User, purpose: str) -> None:
    """End the user's links of one purpose, in the caller's transaction (a newer link, a new password or email)."""
    affected(
        sa.delete(LinkToken)
        .where(LinkToken.user_id == user.id, LinkToken.purpose == purpose, LinkToken.used_at.is_(None))
        .execution_options(synchronize_session=False)
    )


def peek(token: str, purpose: str) -> tuple[LinkToken, User, Client] | None:
    """The live link a token names, with its user and client; writes nothing (for showing the page)."""
    if not isinstance(token, str) or not token.startswith(LINK_PREFIX) or len(token) > 100:
        return None
    row = db.session.execute(
        sa.select(LinkToken, User, Client)
        .join(User, User.id == LinkToken.user_id)
        .join(Client, Client.id == LinkToken.client_pk)
        .where(LinkToken.token_hash == sha256_hex(token), LinkToken.purpose == purpose)
    ).first()
    if row is None:
        return None
    link, user, client = row
    if link.used_at is not None or link.expires_at <= datetime.now(UTC) or not user.enabled:
        return None
    return link, user, client


def _consume(token: str, purpose: str) -> tuple[LinkToken, User, Client]:
    """Use a link up, in the caller's transaction; the database settles two uses at once."""
    found = peek(token, purpose)
    if found is None:
        raise LinkInvalid()
    link, user, client = found
    used = affected(
        sa.update(LinkToken)
        .where(LinkToken.id == link.id, LinkToken.used_at.is_(None))
        .values(used_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if not used:
        raise LinkInvalid()
    return link, user, client


def _check_enabled(user: User) -> None:
    """A disabled user's link would not work (`peek` refuses it): say so instead of sending it."""
    if not user.enabled:
        raise ValidationError("user", f"{user.username} is disabled; enable the account before sending a link")


def link_url(path: str, token: str, rid: str | None = None) -> str:
    url = f"{current_app.config['AUTHGATE_ISSUER']}/{path}/{token}"
    return url + (f"?rid={rid}" if rid else "")


# --- verification ------------------------------------------------------------------------------


def send_verification(client: Client, user: User, email: str | None = None, rid: str | None = None) -> None:
    """Email a verification link for `email` (default: the user's address); raise MailFailed, Throttled.

    For another address than the user's (a change of email) the address becomes the user's only
    when the link is used. The link is committed before the message goes out, so it works as soon
    as it arrives; a failed send leaves a link nobody has.
    """
    address = email or user.email
    if not address:
        raise ValidationError("email", "is required to verify it")
    _check_enabled(user)
    if not mail.available():
        raise mail.MailUnavailable(mail.unavailable_reason())
    guard.spend("mail", "AUTHGATE_MAIL_ACCOUNT_LIMIT", client.client_id, str(user.id))
    with transaction():
        token = _issue(user, VERIFY_EMAIL, address)
        audit.record(audit.VERIFICATION_SENT, client=client, user=user, change_of_email=address != user.email)
    message = mail.compose(
        address,
        f"Verify your email address for {client.name}",
        "verify_email",
        client=client,
        user=user,
        url=link_url("verify", token, rid),
        hours=current_app.config["AUTHGATE_VERIFY_LINK_HOURS"],
        change=address != user.email,
    )
    try:
        mail.send(message)
    except mail.MailFailed:
        # Nobody has the link, so it must not wait as a change of email either ("waiting for X").
        with transaction():
            forget_links(user, VERIFY_EMAIL)
        raise


def verify_email(token: str) -> tuple[User, Client]:
    """Use a verification link: its address becomes the user's, verified (`email_verified` in tokens)."""
    with transaction(conflict=_email_taken):
        link, user, client = _consume(token, VERIFY_EMAIL)
        before = user.email
        if link.email != user.email:
            other = user_service.find_user_by_email(client, link.email)
            if other is not None and other is not user:
                raise ValidationError("email", f"{link.email!r} is now used by another account of {client.name}")
            user.email = link.email
        user.email_verified = True
        detail: dict[str, Any] = {}
        if before != user.email:
            detail["changes"] = {"email": [before, user.email]}
        audit.record(audit.EMAIL_VERIFIED, client=client, user=user, **detail)
    return user, client


def _email_taken() -> None:
    raise ValidationError("email", "this address is now used by another account")


# --- registration ------------------------------------------------------------------------------


def register(
    client: Client,
    ip: str | None,
    *,
    username: str,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
) -> User:
    """Create an account on the client's registration page, with its default roles; raise ValidationError or Throttled.

    The caller sends the verification link (`send_verification`) once the account exists.
    """
    if not registration_open(client):
        raise ValidationError("registration", REGISTRATION_OFF)
    if not (email or "").strip():
        raise ValidationError("email", "is required")
    guard.spend("register", "AUTHGATE_REGISTER_ADDRESS_LIMIT", ip)
    return user_service.create_user(
        client.client_id,
        username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        password=password,
        roles=default_role_names(client),
        event=audit.USER_REGISTERED,
    )


# --- password reset ----------------------------------------------------------------------------


def request_reset(client: Client, login: str, ip: str | None, rid: str | None = None) -> None:
    """Email a reset link to the account a name means, if any; the same for every name. Raise Throttled.

    The look-up and the sending run on the outbox, so the answer's timing says nothing either.
    """
    if not mail.available():
        raise mail.MailUnavailable(mail.unavailable_reason())
    guard.spend("forgot", "AUTHGATE_FORGOT_ADDRESS_LIMIT", ip)
    client_id = client.client_id
    mail.outbox().submit(lambda: _send_reset(client_id, login, ip, rid))


def _send_reset(client_id: str, login: str, ip: str | None, rid: str | None) -> None:
    client = find_client(client_id)
    if client is None:
        return
    user = user_service.find_account(client, login)
    if user is None or not user.enabled or not user.email:
        return
    try:
        guard.spend("mail", "AUTHGATE_MAIL_ACCOUNT_LIMIT", client.client_id, str(user.id))
    except guard.Throttled:
        with transaction():
            audit.record(audit.PASSWORD_RESET_THROTTLED, client=client, user=user, ip=ip)
        return
    _mail_reset_link(client, user, rid, ip=ip)


def send_reset_link(client: Client, user: User) -> None:
    """The console's "send a reset link": at once, telling the admin if mail failed (MailFailed)."""
    if not user.email:
        raise ValidationError("email", "the user has no email address to send a link to")
    _check_enabled(user)
    if not mail.available():
        raise mail.MailUnavailable(mail.unavailable_reason())
    _mail_reset_link(client, user)


def _mail_reset_link(client: Client, user: User, rid: str | None = None, **detail) -> None:
    """Issue a reset link for the user's address (committed, audited) and mail it; raise MailFailed."""
    assert user.email
    with transaction():
        token = _issue(user, RESET_PASSWORD, user.email)
        audit.record(audit.PASSWORD_RESET_SENT, client=client, user=user, **detail)
    mail.send(
        mail.compose(
            user.email,
            f"Reset your password for {client.name}",
            "reset_password",
            client=client,
            user=user,
            url=link_url("reset", token, rid),
            minutes=current_app.config["AUTHGATE_RESET_LINK_MINUTES"],
        )
    )


def reset_password(token: str, password: str) -> tuple[User, Client]:
    """Use a reset link: set the new password, which ends the user's sessions and refresh tokens.

    The link proves the user reads that mailbox, so the address counts as verified too.
    """
    peeked = peek(token, RESET_PASSWORD)
    if peeked is None:
        raise LinkInvalid()
    user_service.check_password(password, peeked[1].username)
    with transaction():
        link, user, client = _consume(token, RESET_PASSWORD)
        if link.email == user.email:
            user.email_verified = True
        user_service.replace_password(user, password, reason="password_reset")
    return user, client


# --- the account page --------------------------------------------------------------------------


def change_password(client: Client, user: User, current: str, new: str, ip: str | None) -> None:
    """Change one's own password, the current one required (under the brute-force guard); raise
    ValidationError (field `current_password` or `password`), Throttled or Busy."""
    user_service.check_password(new, user.username)

    def verify() -> tuple[User | None, str]:
        ok = user_service.password_matches(current, user.password_hash)
        return (user, "ok") if ok else (None, "bad_password")

    checked, _ = guard.password_attempt(client, user.username, ip, verify, page="account")
    if checked is None:
        raise ValidationError("current_password", "is not your current password")
    with transaction():
        user_service.replace_password(user, new, reason="password_changed")


def update_profile(client: Client, user: User, first_name: str, last_name: str) -> User:
    return user_service.update_user(client.client_id, user.username, first_name=first_name, last_name=last_name)


def request_email_change(client: Client, user: User, email: str, rid: str | None = None) -> str:
    """Send a verification link to a new address; it becomes the user's when the link is used. Return it."""
    address = user_service.check_email(email)
    if address is None:
        raise ValidationError("email", "is required")
    if user.email and address.lower() == user.email.lower():
        raise ValidationError("email", "is already your address")
    other = user_service.find_user_by_email(client, address)
    if other is not None and other is not user:
        raise ValidationError("email", "is used by another account")
    send_verification(client, user, address, rid)
    return address


def pending_email(user: User) -> str | None:
    """The address a live change-of-email link waits to verify, if any."""
    now = datetime.now(UTC)
    return db.session.scalar(
        sa.select(LinkToken.email)
        .where(
            LinkToken.user_id == user.id,
            LinkToken.purpose == VERIFY_EMAIL,
            LinkToken.used_at.is_(None),
            LinkToken.expires_at > now,
            LinkToken.email != (user.email or ""),
        )
        .order_by(LinkToken.created_at.desc())
        .limit(1)
    )


def unlink_identity(client: Client, user: User, slug: str) -> IdentityProvider:
    """Unlink one of the user's own upstream accounts; refuse the last way left to sign in. Return its provider.

    Raise NotFound for a provider the user has no link with, ValidationError (field `identity`)
    when neither a password nor another enabled provider would be left.
    """
    with transaction():
        # Two unlinks at once must not both see the other's link as the way that is left.
        db.session.execute(sa.select(User.id).where(User.id == user.id).with_for_update())
        linked = identities.list_identities(user)
        identity = next((i for i in linked if i.provider.slug == slug), None)
        if identity is None:
            raise NotFound(f"no linked account for {slug!r}")
        provider = identity.provider
        others = [i for i in linked if i is not identity and i.provider.enabled]
        if user.password_hash is None and not others:
            raise ValidationError(
                "identity", f"{provider.name} is your only way to sign in to {client.name}, so it stays linked"
            )
        db.session.delete(identity)
        audit.record(identities.IDENTITY_UNLINKED, client=client, user=user, idp=slug)
    return provider
