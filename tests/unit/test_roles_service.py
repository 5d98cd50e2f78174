"""Role rules, and isolation between clients in the service and in the schema."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Role, UserRole
from app.services import ValidationError
from app.services import roles as service
from app.services import users as user_service


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "is required"),
        ("1ROLE", "must start with a letter"),
        ("ROLE ADMIN", "must start with a letter"),
        ("R" * 65, "up to 64"),
    ],
)
def test_invalid_role_name_is_refused(app, make_client, name, reason):
    make_client(client_id="web")
    with pytest.raises(ValidationError, match=reason):
        service.create_role("web", name)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Role)) == 0


def test_role_names_are_unique_per_client_only(app, make_client):
    make_client(client_id="web")
    make_client(client_id="shop")
    service.create_role("web", "ROLE_ADMIN")
    service.create_role("shop", "ROLE_ADMIN")
    with pytest.raises(ValidationError, match="already has a role"):
        service.create_role("web", "ROLE_ADMIN")


def test_role_names_differ_by_more_than_case(app, make_client):
    """As usernames and emails: ROLE_ADMIN and role_admin would be one role to a person reading them."""
    make_client(client_id="web")
    service.create_role("web", "ROLE_ADMIN")
    with pytest.raises(ValidationError) as refused:
        service.create_role("web", "role_admin")
    assert refused.value.errors == {
        "name": "client 'web' already has a role 'ROLE_ADMIN'; role names are the same whatever their case"
    }
    assert [role.name for role in service.list_roles(client_of("web"))] == ["ROLE_ADMIN"]


def test_the_database_refuses_roles_differing_only_in_case(app, make_client):
    """A writer that slipped past the check (a race) loses at the unique index."""
    web, _ = make_client(client_id="web")
    db.session.add(Role(client_pk=web.id, name="ROLE_ADMIN", description=""))
    db.session.commit()
    db.session.add(Role(client_pk=web.id, name="Role_Admin", description=""))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def client_of(client_id: str):
    from app.services.clients import get_client

    return get_client(client_id)


def test_delete_role_reports_holders(app, make_client, make_role, make_user):
    make_client(client_id="web")
    make_role("web", "ROLE_ADMIN")
    make_user("web", "bob", roles=["ROLE_ADMIN"])
    make_user("web", "alice", roles=["ROLE_ADMIN"])
    assert service.delete_role("web", "ROLE_ADMIN") == ["alice", "bob"]


@pytest.fixture
def two_tenants(make_client, make_role, make_user):
    make_client(client_id="client-a")
    make_client(client_id="client-b")
    role_b = make_role("client-b", "ROLE_ADMIN")
    user_a = make_user("client-a", "alice")
    return user_a, role_b


def test_service_refuses_role_of_another_client(app, two_tenants):
    user_a, role_b = two_tenants
    with pytest.raises(ValidationError, match="belongs to another client"):
        user_service.assign_role_object(user_a, role_b)
    # By name, a role is only ever looked up in the user's own client.
    with pytest.raises(Exception, match="has no role"):
        user_service.assign_role("client-a", "alice", "ROLE_ADMIN")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserRole)) == 0


@pytest.mark.parametrize("claimed_client", ["user", "role"])
def test_database_refuses_role_of_another_client(app, two_tenants, claimed_client):
    """Written straight through the ORM, past the service, the composite foreign keys still refuse."""
    user_a, role_b = two_tenants
    client_pk = user_a.client_pk if claimed_client == "user" else role_b.client_pk
    db.session.add(UserRole(client_pk=client_pk, user_id=user_a.id, role_id=role_b.id))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserRole)) == 0
