"""Linked identities: which upstream account (a provider's subject) signs in as which user."""

from datetime import UTC, datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import IdentityProvider, LinkedIdentity, User
from app.services import NotFound, ValidationError, audit, transaction
from app.services.clients import get_client
from app.services.idps import get_provider
from app.services.users import get_user

IDENTITY_LINKED = "identity_linked"
IDENTITY_UNLINKED = "identity_unlinked"


def find_identity(provider: IdentityProvider, subject: str) -> LinkedIdentity | None:
    """The link of an upstream account, by the upstream's subject."""
    query = sa.select(LinkedIdentity).where(LinkedIdentity.provider_id == provider.id)
    return db.session.scalar(query.where(LinkedIdentity.subject == subject))


def identity_of(provider: IdentityProvider, user: User) -> LinkedIdentity | None:
    """The user's link through this provider, if any (a user links one account per provider)."""
    query = sa.select(LinkedIdentity).where(LinkedIdentity.provider_id == provider.id)
    return db.session.scalar(query.where(LinkedIdentity.user_id == user.id))


def list_identities(user: User) -> list[LinkedIdentity]:
    """The upstream accounts linked to a user, by provider name."""
    query = (
        sa.select(LinkedIdentity)
        .join(IdentityProvider, IdentityProvider.id == LinkedIdentity.provider_id)
        .where(LinkedIdentity.user_id == user.id)
        .order_by(IdentityProvider.name)
    )
    return list(db.session.scalars(query))


def sign_in_methods(user: User) -> list[str]:
    """How the user can sign in: "password" and the slug of each linked provider that is enabled."""
    methods = ["password"] if user.password_hash is not None else []
    return methods + [identity.provider.slug for identity in list_identities(user) if identity.provider.enabled]


def identity_to_dict(identity: LinkedIdentity) -> dict:
    return {
        "provider": identity.provider.slug,
        "provider_name": identity.provider.name,
        "subject": identity.subject,
        "email": identity.email,
        "created_at": identity.created_at.isoformat(),
        "last_login_at": identity.last_login_at.isoformat() if identity.last_login_at else None,
    }


def add_identity(provider: IdentityProvider, user: User, subject: str, email: str | None) -> LinkedIdentity:
    """Record that an upstream account signs in as this user, in the caller's transaction."""
    if user.client_pk != provider.client_pk:
        raise ValidationError("user", "belongs to another client than the identity provider")
    if find_identity(provider, subject) is not None:
        raise ValidationError("identity", f"this {provider.name} account is already linked to a user")
    if identity_of(provider, user) is not None:
        raise ValidationError("identity", f"the account is already linked to another {provider.name} account")
    identity = LinkedIdentity(
        client_pk=provider.client_pk,
        provider_id=provider.id,
        user_id=user.id,
        subject=subject,
        email=email,
        last_login_at=datetime.now(UTC),
    )
    db.session.add(identity)
    db.session.flush()
    return identity


def unlink(client_id: str, username: str, slug: str) -> None:
    """Remove the link between a user and their account at a provider; the user stays."""
    with transaction():
        client = get_client(client_id)
        user = get_user(client, username)
        provider = get_provider(client, slug)
        identity = identity_of(provider, user)
        if identity is None:
            raise NotFound(f"{username!r} has no linked {provider.name} account")
        db.session.delete(identity)
        audit.record(IDENTITY_UNLINKED, client=client, user=user, idp=slug)
