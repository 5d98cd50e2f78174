"""Roles per client."""

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import Client, Role, User, UserRole
from app.services import Errors, NotFound, ValidationError, audit, transaction
from app.services.clients import CONSOLE_ADMIN_ROLE, CONSOLE_CLIENT_ID, get_client
from app.services.validation import as_list

ROLE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")


def check_role_name(value) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError("name", "is required")
    if not ROLE_NAME_RE.match(value):
        raise ValidationError(
            "name",
            "must start with a letter and use up to 64 letters, digits, '_', '.', ':' or '-' (for example ROLE_ADMIN)",
        )
    return value


def check_role_names(value) -> list[str]:
    """A list of role names (a list, or one string of comma- or space-separated names), each checked
    like a new role's; a name repeated in another case counts once, as the database would have it."""
    names: dict[str, str] = {}
    for name in as_list(value):
        try:
            check_role_name(name)
        except ValidationError:
            raise ValidationError(
                "value",
                f"{name!r} is not a role name: use a letter, then up to 63 letters, digits, '_', '.', ':' or '-'",
            ) from None
        names.setdefault(name.lower(), name)
    return list(names.values())


def check_description(value) -> str:
    value = (value or "").strip()
    if len(value) > 500:
        raise ValidationError("description", "must be at most 500 characters")
    return value


def find_role(client: Client, name: str) -> Role | None:
    return db.session.scalar(sa.select(Role).where(Role.client_pk == client.id, Role.name == name))


def get_role(client: Client, name: str) -> Role:
    role = find_role(client, name)
    if role is None:
        raise NotFound(f"client {client.client_id!r} has no role {name!r}")
    return role


def list_roles(client: Client) -> list[Role]:
    return list(db.session.scalars(sa.select(Role).where(Role.client_pk == client.id).order_by(Role.name)))


def default_role_names(client: Client) -> list[str]:
    """The roles a self-registered user of the client gets, by name."""
    query = sa.select(Role.name).where(Role.client_pk == client.id, Role.is_default.is_(True)).order_by(Role.name)
    return list(db.session.scalars(query))


def check_roles_exist(client: Client, names: list[str]) -> None:
    """Refuse a name that is none of the client's roles (whatever its case), naming the field `default_roles`."""
    known = {role.name.lower() for role in list_roles(client)}
    for name in names:
        if name.lower() not in known:
            raise ValidationError("default_roles", f"client {client.client_id!r} has no role {name!r}")


def set_default_roles(client: Client, names: list[str], create_missing: bool = False) -> None:
    """Make exactly these roles the client's defaults, in the caller's transaction.

    A name is matched whatever its case. A role that does not exist is created when the client is
    being registered (`create_missing`); later a name must be one of the client's roles, so a typo
    is refused rather than becoming a new role.
    """
    roles = {role.name.lower(): role for role in list_roles(client)}
    if not create_missing:
        check_roles_exist(client, names)
    wanted = set()
    for name in names:
        role = roles.get(name.lower())
        if role is None:
            role = Role(client_pk=client.id, name=name, description="")
            db.session.add(role)
            roles[name.lower()] = role
            audit.record(audit.ROLE_CREATED, client=client, role=name, changes={})
        wanted.add(role.name.lower())
    for key, role in roles.items():
        role.is_default = key in wanted
    db.session.flush()


def holders(role: Role) -> list[User]:
    """Users who hold the role, by username."""
    query = (
        sa.select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role_id == role.id)
        .order_by(User.username)
    )
    return list(db.session.scalars(query))


def holders_preview(role: Role, limit: int = 20) -> tuple[list[str], int]:
    """The first `limit` usernames holding the role, and how many hold it in all."""
    names = (
        sa.select(User.username)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role_id == role.id)
        .order_by(sa.func.lower(User.username))
        .limit(limit)
    )
    total = sa.select(sa.func.count()).select_from(UserRole).where(UserRole.role_id == role.id)
    return list(db.session.scalars(names)), db.session.scalar(total) or 0


def holder_counts(client: Client) -> dict[int, int]:
    """Number of holders of each role of the client, by role id."""
    query = (
        sa.select(UserRole.role_id, sa.func.count()).where(UserRole.client_pk == client.id).group_by(UserRole.role_id)
    )
    return dict(db.session.execute(query).all())


def _check_role_free(client_id: str, name: str) -> Client:
    """The client, if it has no role of this name yet, in any case: ROLE_ADMIN and role_admin would
    read as one role to people and to many applications' checks (the unique index on lower(name))."""
    client = get_client(client_id)
    same = db.session.scalar(
        sa.select(Role.name).where(Role.client_pk == client.id, sa.func.lower(Role.name) == name.lower())
    )
    if same == name:
        raise ValidationError("name", f"client {client_id!r} already has a role {name!r}")
    if same is not None:
        raise ValidationError(
            "name", f"client {client_id!r} already has a role {same!r}; role names are the same whatever their case"
        )
    return client


def create_role(client_id: str, name: str, description: str = "") -> Role:
    errors = Errors()
    name = errors.check("name", check_role_name, name)
    description = errors.check("description", check_description, description)
    errors.raise_if_any()
    with transaction(conflict=lambda: _check_role_free(client_id, name)):
        client = _check_role_free(client_id, name)
        role = Role(client_pk=client.id, name=name, description=description)
        db.session.add(role)
        db.session.flush()
        audit.record(
            audit.ROLE_CREATED, client=client, role=name, changes=audit.changes({}, {"description": description})
        )
    return role


def check_role_deletable(client_id: str, name: str) -> None:
    """Refuse to delete the role that lets anyone into the console."""
    if client_id == CONSOLE_CLIENT_ID and name == CONSOLE_ADMIN_ROLE:
        raise ValidationError("name", f"{name} cannot be deleted: without it no one can use the console")


def delete_role(client_id: str, name: str) -> list[str]:
    """Delete the role; return the usernames that held it."""
    check_role_deletable(client_id, name)
    with transaction():
        client = get_client(client_id)
        role = get_role(client, name)
        had_it = [user.username for user in holders(role)]
        audit.record(audit.ROLE_DELETED, client=client, role=name, holders=len(had_it))
        db.session.delete(role)
    return had_it


def to_dict(role: Role) -> dict:
    return {"name": role.name, "description": role.description}
