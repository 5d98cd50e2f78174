"""Users per client: registration, passwords, roles."""

import re
from typing import Any

import bcrypt
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import current_app

from app.extensions import db
from app.models import Client, Role, User, UserRole
from app.models.link import RESET_PASSWORD, VERIFY_EMAIL
from app.services import Errors, NotFound, ValidationError, audit, transaction
from app.services.clients import get_client
from app.services.pagination import Page, like_pattern, paginate
from app.services.roles import get_role
from app.services.validation import library_reason

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
PASSWORD_MIN_LENGTH = 8
# bcrypt reads at most 72 bytes; a longer password would be silently truncated.
PASSWORD_MAX_BYTES = 72


def check_username(value) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError("username", "is required")
    if not USERNAME_RE.match(value):
        raise ValidationError(
            "username",
            "must be 1 to 64 characters: letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit",
        )
    return value


def check_email(value) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError("email", f"is not a valid address: {library_reason(exc)}") from None


def check_person_name(field: str, value) -> str:
    value = (value or "").strip()
    if len(value) > 100:
        raise ValidationError(field, "must be at most 100 characters")
    return value


def check_password(password, username: str | None = None) -> str:
    if not isinstance(password, str) or len(password) < PASSWORD_MIN_LENGTH:
        raise ValidationError("password", f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(password.encode()) > PASSWORD_MAX_BYTES:
        raise ValidationError("password", f"must be at most {PASSWORD_MAX_BYTES} bytes")
    if username and password.casefold() == username.casefold():
        raise ValidationError("password", "must not be the username")
    return password


def hash_password(password: str) -> str:
    rounds = current_app.config["AUTHGATE_BCRYPT_ROUNDS"]
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def password_matches(password: str, password_hash: str | None) -> bool:
    if not password_hash or not isinstance(password, str):
        return False
    encoded = password.encode()
    if len(encoded) > PASSWORD_MAX_BYTES:
        return False
    return bcrypt.checkpw(encoded, password_hash.encode())


def hash_cost(password_hash: str) -> int:
    # "$2b$12$..." -> 12
    return int(password_hash.split("$")[2])


_dummy_hashes: dict[int, str] = {}


def _spend_a_hash(password: str) -> None:
    """Take as long as a real check, so timing does not tell whether a username exists."""
    rounds = current_app.config["AUTHGATE_BCRYPT_ROUNDS"]
    if rounds not in _dummy_hashes:
        _dummy_hashes[rounds] = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds)).decode()
    password_matches(password if isinstance(password, str) else "", _dummy_hashes[rounds])


def authenticate(client: Client, login: str, password: str) -> tuple[User | None, str]:
    """Check a username (or email) and password within one client; return (user, reason).

    The reason is for the audit log only; the person signing in sees one message for all failures.
    A stored hash of an outdated cost is replaced in the session, not committed: it is written with
    the caller's transaction for the sign-in.
    """
    user = find_account(client, login)
    if user is None or user.password_hash is None:
        _spend_a_hash(password)
        return None, "unknown_user" if user is None else "no_password"
    if not password_matches(password, user.password_hash):
        return None, "bad_password"
    if not user.enabled:
        return None, "disabled"
    if hash_cost(user.password_hash) != current_app.config["AUTHGATE_BCRYPT_ROUNDS"]:
        # The configured cost changed: upgrade the stored hash while we have the password.
        user.password_hash = hash_password(password)
    return user, "ok"


# --- queries ---------------------------------------------------------------------------


_BY_USERNAME = sa.select(User).where(
    User.client_pk == sa.bindparam("client_pk"), sa.func.lower(User.username) == sa.bindparam("username")
)


def find_user(client: Client, username: str) -> User | None:
    if not isinstance(username, str) or not username:
        return None
    return db.session.scalar(_BY_USERNAME, {"client_pk": client.id, "username": username.strip().lower()})


def find_account(client: Client, login: str) -> User | None:
    """The user a sign-in form's name means: a username, else (with an @) an email."""
    user = find_user(client, login)
    if user is None and isinstance(login, str) and "@" in login:
        user = find_user_by_email(client, login)
    return user


def find_user_by_email(client: Client, email: str) -> User | None:
    if not email:
        return None
    query = sa.select(User).where(User.client_pk == client.id, sa.func.lower(User.email) == email.lower())
    return db.session.scalar(query)


def get_user(client: Client, username: str) -> User:
    user = find_user(client, username)
    if user is None:
        raise NotFound(f"client {client.client_id!r} has no user {username!r}")
    return user


def list_users(client: Client, search: str | None = None, page: int = 1, per_page: int = 50) -> Page:
    query = sa.select(User).where(User.client_pk == client.id).order_by(sa.func.lower(User.username))
    if search:
        pattern = like_pattern(search.strip())
        query = query.where(
            sa.or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (User.username, User.email, User.first_name, User.last_name)
                )
            )
        )
    return paginate(query, page, per_page)


# Built once: composing a statement costs more than SQLite takes to run it (see bench/README.md).
_ROLE_NAMES = (
    sa.select(Role.name)
    .join(UserRole, UserRole.role_id == Role.id)
    .where(UserRole.user_id == sa.bindparam("user_id"))
    .order_by(Role.name)
)


def role_names(user: User) -> list[str]:
    return list(db.session.scalars(_ROLE_NAMES, {"user_id": user.id}))


def role_names_of(users: list[User]) -> dict[int, list[str]]:
    """`role_names` for a page of users at once (one query), by user id."""
    result: dict[int, list[str]] = {user.id: [] for user in users}
    if not result:
        return result
    query = (
        sa.select(UserRole.user_id, Role.name)
        .join(Role, Role.id == UserRole.role_id)
        .where(UserRole.user_id.in_(list(result)))
        .order_by(Role.name)
    )
    for user_id, name in db.session.execute(query):
        result[user_id].append(name)
    return result


def is_console_admin(user: User) -> bool:
    """Whether the user may use the console: enabled, of the console's client, holding its admin role."""
    from app.services.clients import CONSOLE_ADMIN_ROLE, CONSOLE_CLIENT_ID

    if not user.enabled:
        return False
    query = (
        sa.select(UserRole.user_id)
        .join(Role, Role.id == UserRole.role_id)
        .join(Client, Client.id == Role.client_pk)
        .where(UserRole.user_id == user.id, Role.name == CONSOLE_ADMIN_ROLE, Client.client_id == CONSOLE_CLIENT_ID)
    )
    return db.session.scalar(query.limit(1)) is not None


def to_dict(user: User) -> dict:
    return {
        "sub": user.sub,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "enabled": user.enabled,
        "has_password": user.password_hash is not None,
        "roles": role_names(user),
        "created_at": user.created_at.isoformat(),
    }


# --- writes ----------------------------------------------------------------------------

PROFILE = ("email", "first_name", "last_name", "enabled", "email_verified")


def _audited(user: User) -> dict:
    """What the audit log compares of a user; the password only as whether it was set or changed."""
    return {**{name: getattr(user, name) for name in PROFILE}, "password": user.password_hash}


def _record_roles(user: User, before: list[str]) -> None:
    """Record a change of the roles the user holds, in the caller's transaction."""
    after = role_names(user)
    if after != before:
        audit.record(audit.USER_ROLES_CHANGED, user=user, changes={"roles": [before, after]})


def _ensure_unique(client: Client, username: str | None, email: str | None, user: User | None = None):
    if username is not None:
        other = find_user(client, username)
        if other is not None and other is not user:
            raise ValidationError("username", f"{username!r} is already taken in this client")
    if email is not None:
        other = find_user_by_email(client, email)
        if other is not None and other is not user:
            raise ValidationError("email", f"{email!r} is already used by another user of this client")


def _add_role(user: User, role: Role) -> None:
    if role.client_pk != user.client_pk:
        raise ValidationError("role", f"{role.name!r} belongs to another client")
    exists = db.session.get(UserRole, (user.id, role.id))
    if exists is None:
        db.session.add(UserRole(client_pk=user.client_pk, user_id=user.id, role_id=role.id))


def create_user(
    client_id: str,
    username: str,
    email: str | None = None,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    roles: tuple[str, ...] | list[str] = (),
    enabled: bool = True,
    email_verified: bool = False,
    event: str = audit.USER_CREATED,
) -> User:
    """Register a user under a client; `password=None` makes a social-login-only account.

    `event` is the audit kind: an admin's `user_created`, or `user_registered` for self-registration.
    """
    errors = Errors()
    username = errors.check("username", check_username, username)
    email = errors.check("email", check_email, email)
    first_name = errors.check("first_name", check_person_name, "first_name", first_name)
    last_name = errors.check("last_name", check_person_name, "last_name", last_name)
    if password is not None:
        errors.check("password", check_password, password, username)
    errors.raise_if_any()
    with transaction(conflict=lambda: _ensure_unique(client, username, email)):
        client = get_client(client_id)
        _ensure_unique(client, username, email)
        user = User(
            client_pk=client.id,
            username=username,
            email=email,
            first_name=first_name,
            last_name=last_name,
            password_hash=hash_password(password) if password is not None else None,
            enabled=enabled,
            email_verified=email_verified and email is not None,
        )
        db.session.add(user)
        db.session.flush()
        for name in roles:
            try:
                _add_role(user, get_role(client, name))
            except NotFound as exc:
                raise ValidationError("roles", str(exc)) from None
        created = audit.changes({}, {**_audited(user), "roles": role_names(user)}, opaque=("password",))
        audit.record(event, user=user, changes=created)
    return user


def update_user(client_id: str, username: str, **changes) -> User:
    """Change a user's email, names or flags."""
    allowed = {"email", "first_name", "last_name", "enabled", "email_verified"}
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"cannot change {', '.join(sorted(unknown))} with update_user")
    errors = Errors()
    clean = {}
    if "email" in changes:
        clean["email"] = errors.check("email", check_email, changes["email"])
    for field in ("first_name", "last_name"):
        if field in changes:
            clean[field] = errors.check(field, check_person_name, field, changes[field])
    for flag in ("enabled", "email_verified"):
        if flag in changes:
            clean[flag] = bool(changes[flag])
    errors.raise_if_any()

    def email_taken() -> None:
        client = get_client(client_id)
        _ensure_unique(client, None, clean.get("email"), get_user(client, username))

    with transaction(conflict=email_taken):
        client = get_client(client_id)
        user = get_user(client, username)
        before = _audited(user)
        if "email" in clean:
            _ensure_unique(client, None, clean["email"], user)
            if clean["email"] != user.email:
                user.email_verified = False
                # A verification link sent for another address must not make that one the user's.
                _forget_links(user, VERIFY_EMAIL)
        disabling = user.enabled and clean.get("enabled") is False
        for field, value in clean.items():
            setattr(user, field, value)
        if user.email is None:
            user.email_verified = False
        changed = audit.changes(before, _audited(user))
        if changed:
            audit.record(audit.USER_UPDATED, user=user, changes=changed)
        if disabling:
            _end_everything(user, "disabled")
    return user


def _end_everything(user: User, reason: str) -> None:
    """A credential change ends the user's sign-ins and tokens (imported here: sessions reads users)."""
    from app.services import sessions

    sessions.end_everything(user, reason)


def _forget_links(user: User, purpose: str) -> None:
    from app.services import selfservice  # it builds on this module

    selfservice.forget_links(user, purpose)


def replace_password(user: User, password: str | None, reason: str | None = None) -> None:
    """Set or remove the user's password in the caller's transaction; every sign-in, refresh token
    and emailed reset link of the user ends with the old one."""
    before = _audited(user)
    if password is None:
        user.password_hash = None
    else:
        check_password(password, user.username)
        user.password_hash = hash_password(password)
    changes = audit.changes(before, _audited(user), ("password",))
    detail: dict[str, Any] = {"changes": changes}
    if reason:
        detail["reason"] = reason
    audit.record(audit.USER_PASSWORD_SET, user=user, **detail)
    _forget_links(user, RESET_PASSWORD)
    _end_everything(user, reason or "password_changed")


def set_password(client_id: str, username: str, password: str | None) -> User:
    """Set a new password, or remove it (`None`) for a social-login-only account."""
    with transaction():
        user = get_user(get_client(client_id), username)
        replace_password(user, password)
    return user


def set_enabled(client_id: str, username: str, enabled: bool) -> User:
    return update_user(client_id, username, enabled=enabled)


def assign_role(client_id: str, username: str, role_name: str) -> User:
    with transaction():
        client = get_client(client_id)
        user = get_user(client, username)
        before = role_names(user)
        _add_role(user, get_role(client, role_name))
        _record_roles(user, before)
    return user


def assign_role_object(user: User, role: Role) -> None:
    """Give a loaded role to a loaded user; refused when they belong to different clients."""
    with transaction():
        before = role_names(user)
        _add_role(user, role)
        _record_roles(user, before)


def remove_role(client_id: str, username: str, role_name: str) -> User:
    with transaction():
        client = get_client(client_id)
        user = get_user(client, username)
        role = get_role(client, role_name)
        before = role_names(user)
        link = db.session.get(UserRole, (user.id, role.id))
        if link is not None:
            db.session.delete(link)
        _record_roles(user, before)
    return user


def set_roles(client_id: str, username: str, role_names_wanted: list[str]) -> User:
    """Make the user hold exactly these roles of their client."""
    with transaction():
        client = get_client(client_id)
        user = get_user(client, username)
        wanted = {get_role(client, name).id for name in role_names_wanted}
        before = role_names(user)
        held = set(db.session.scalars(sa.select(UserRole.role_id).where(UserRole.user_id == user.id)))
        for role_id in held - wanted:
            db.session.delete(db.session.get(UserRole, (user.id, role_id)))
        for role_id in wanted - held:
            db.session.add(UserRole(client_pk=user.client_pk, user_id=user.id, role_id=role_id))
        _record_roles(user, before)
    return user


def delete_user(client_id: str, username: str) -> None:
    with transaction():
        client = get_client(client_id)
        user = get_user(client, username)
        # Named, not tied to the row it outlives (the database would empty the link).
        audit.record(audit.USER_DELETED, client=client, username=user.username)
        db.session.delete(user)
