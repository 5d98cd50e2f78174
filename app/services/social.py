"""Social sign-in: who an upstream account signs in as, under one client.

The rules, in order:

1. An upstream account already linked (provider + subject) signs in as its user, if enabled.
2. Otherwise the upstream must vouch for the email address (verified), or nobody is signed in:
   an unverified address would let anyone claim someone else's account or squat their email.
3. A local user with that email is linked automatically only when the provider allows it
   (`link_verified_email`) and the local user's email is verified too; otherwise the person is
   asked for that account's password once (or may take a separate account, see below).
4. Nobody with that email: a new user is made when the provider creates users (`auto_create`),
   with the provider's default roles; otherwise the person may link an account they know the
   password of.

A separate account offered instead of linking cannot use the email (emails are unique per
client), so it is made without one.
"""

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import Client, IdentityProvider, User, UserRole
from app.services import ServiceError, ValidationError, audit, guard, identities, transaction, users
from app.services.upstream import Profile, finish

EMAIL_TAKEN = "email_taken"
NO_ACCOUNT = "no_account"
# Characters a username may hold (users.USERNAME_RE); anything else is dropped from a derived one.
_NOT_USERNAME = re.compile(r"[^A-Za-z0-9._@+-]+")


class SignInRefused(ServiceError):
    """The upstream account may not sign in; `reason` is for the audit log, the message for the page."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass
class Outcome:
    """The result of a social sign-in: a user, or the need to link with a password (`link_reason`)."""

    profile: Profile
    user: User | None = None
    created: bool = False
    linked: bool = False
    link_reason: str | None = None


def complete(client: Client, provider: IdentityProvider, code: str, nonce: str, code_verifier: str) -> Outcome:
    """Finish the upstream round trip, then decide who signs in."""
    return resolve(client, provider, finish(provider, code, nonce, code_verifier))


def _check_enabled(user: User | None) -> None:
    if user is None or not user.enabled:
        raise SignInRefused("user_disabled", "This account is disabled. Ask the application's administrators.")


def resolve(client: Client, provider: IdentityProvider, profile: Profile) -> Outcome:
    """Apply the rules above to what the upstream said."""
    if provider.client_pk != client.id:
        raise ValueError("the provider belongs to another client")
    identity = identities.find_identity(provider, profile.subject)
    if identity is not None:
        user = db.session.get(User, identity.user_id)
        _check_enabled(user)
        with transaction():
            identity.email = profile.email or identity.email
            identity.last_login_at = datetime.now(UTC)
        return Outcome(profile, user)
    if not (profile.email and profile.email_verified):
        raise SignInRefused(
            "unverified_email",
            f"Your {provider.name} account has no verified email address. Verify your email with "
            f"{provider.name}, then sign in again.",
        )
    match = users.find_user_by_email(client, profile.email)
    if match is not None:
        if provider.link_verified_email and match.email_verified:
            _check_enabled(match)
            link(provider, match, profile)
            return Outcome(profile, match, linked=True)
        return Outcome(profile, link_reason=EMAIL_TAKEN)
    if provider.auto_create:
        return Outcome(profile, create_account(client, provider, profile), created=True)
    return Outcome(profile, link_reason=NO_ACCOUNT)


def link(provider: IdentityProvider, user: User, profile: Profile) -> None:
    """Link the upstream account to the user; refused when either is linked already."""
    if identities.identity_of(provider, user) is not None:
        raise SignInRefused(
            "already_linked",
            f"This account is already linked to another {provider.name} account. Sign in with that one, "
            "or ask the application's administrators to unlink it.",
        )
    client = db.session.get(Client, provider.client_pk)
    try:
        with transaction():
            identities.add_identity(provider, user, profile.subject, profile.email)
            audit.record(identities.IDENTITY_LINKED, client=client, user=user, idp=provider.slug)
    except (ValidationError, sa.exc.IntegrityError):
        # Linked by a parallel request a moment ago.
        raise SignInRefused("already_linked", f"This {provider.name} account is already linked.") from None


def link_with_password(
    client: Client, provider: IdentityProvider, profile: Profile, login: str, password: str, ip: str | None
) -> tuple[User | None, str]:
    """Link the upstream account to the local account whose password the person knows; return (user, reason).

    The password is checked like any sign-in's, under the guard (a failure audited and counted
    towards the name's lock and the address's throttle): raises guard.Throttled or guard.Busy.
    """
    user, reason = guard.password_attempt(
        client, login, ip, lambda: users.authenticate(client, login, password), method="pwd", idp=provider.slug
    )
    if user is None:
        return None, reason
    link(provider, user, profile)
    return user, "ok"


def _username_candidates(profile: Profile):
    hint = profile.username or (profile.email or "").split("@")[0]
    # "José María" -> "Jose.Maria": accents dropped, spaces become dots, anything else not allowed goes.
    ascii_hint = unicodedata.normalize("NFKD", hint).encode("ascii", "ignore").decode()
    base = _NOT_USERNAME.sub("", re.sub(r"\s+", ".", ascii_hint.strip())).lstrip("._@+-")[:56] or "user"
    yield base
    for n in range(2, 21):
        yield f"{base}-{n}"
    while True:
        yield f"{base}-{secrets.token_hex(3)}"


def derive_username(client: Client, profile: Profile) -> str:
    """A free username of the client from the upstream login or email: alice, alice-2, ..."""
    for candidate in _username_candidates(profile):
        if users.find_user(client, candidate) is None:
            return candidate
    raise AssertionError("unreachable")


def create_account(client: Client, provider: IdentityProvider, profile: Profile, with_email: bool = True) -> User:
    """Make a user for the upstream account, with the provider's default roles, and link it, all at once."""
    email = None
    if with_email:
        try:
            email = users.check_email(profile.email)
        except ValidationError:
            email = None
    for attempt in range(3):
        username = derive_username(client, profile)
        try:
            with transaction():
                user = User(
                    client_pk=client.id,
                    username=username,
                    email=email,
                    email_verified=email is not None and profile.email_verified,
                    first_name=profile.first_name.strip()[:100],
                    last_name=profile.last_name.strip()[:100],
                    password_hash=None,
                )
                db.session.add(user)
                db.session.flush()
                for role in provider.default_roles:
                    db.session.add(UserRole(client_pk=client.id, user_id=user.id, role_id=role.id))
                identities.add_identity(provider, user, profile.subject, profile.email)
                audit.record(identities.IDENTITY_LINKED, client=client, user=user, idp=provider.slug, created=True)
        except sa.exc.IntegrityError:
            # Someone took the username (or the email) in between; try again with a fresh look.
            if attempt == 2:
                raise
            if email is not None and users.find_user_by_email(client, email) is not None:
                raise SignInRefused(
                    "email_taken", f"An account with {email} was just created. Sign in again."
                ) from None
            continue
        return user
    raise AssertionError("unreachable")
