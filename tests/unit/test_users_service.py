"""User rules: usernames, emails, passwords, roles; all per client."""

import bcrypt
import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import User
from app.services import NotFound, ValidationError
from app.services import users as service


@pytest.fixture
def web(make_client):
    return make_client(client_id="web")[0]


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"username": ""}, "username", "is required"),
        ({"username": "al ice"}, "username", "letters, digits"),
        ({"username": ".alice"}, "username", "starting with a letter"),
        ({"username": "a" * 65}, "username", "1 to 64"),
        ({"email": "not-an-email"}, "email", "not a valid address"),
        ({"email": "alice@"}, "email", "not a valid address"),
        ({"password": "short"}, "password", "at least 8 characters"),
        ({"password": "Alice-Smith"}, "password", "must not be the username"),
        ({"password": "é" * 40}, "password", "at most 72 bytes"),
        ({"first_name": "x" * 101}, "first_name", "at most 100"),
        ({"roles": ["ROLE_MISSING"]}, "roles", "has no role"),
    ],
)
def test_invalid_user_is_refused_and_nothing_written(app, web, fields, field, reason):
    base = {"username": "alice-smith", "email": "alice@example.com", "password": "correct horse"}
    with pytest.raises(ValidationError) as info:
        service.create_user("web", **{**base, **fields})
    assert reason in info.value.errors[field], info.value.errors
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_password_is_bcrypt_with_configured_cost(app, web, make_user):
    user = make_user("web", "alice", password="correct horse")
    assert user.password_hash.startswith("$2b$04$")
    assert bcrypt.checkpw(b"correct horse", user.password_hash.encode())
    assert service.password_matches("correct horse", user.password_hash)
    assert not service.password_matches("wrong horse", user.password_hash)


def test_usernames_and_emails_are_unique_per_client_case_insensitively(app, web, make_user):
    make_user("web", "Alice", email="Alice@Example.com")
    with pytest.raises(ValidationError, match="already taken"):
        make_user("web", "alice", email="other@example.com")
    with pytest.raises(ValidationError, match="already used"):
        make_user("web", "alice2", email="alice@example.com")
    assert service.find_user(web, "ALICE").username == "Alice"


def test_database_enforces_case_insensitive_uniqueness(app, web, make_user):
    make_user("web", "Alice")
    db.session.add(User(client_pk=web.id, username="ALICE", first_name="", last_name=""))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_same_username_in_two_clients_is_two_people(app, make_client, make_user):
    make_client(client_id="web")
    make_client(client_id="shop")
    a = make_user("web", "alice")
    b = make_user("shop", "alice")
    assert a.id != b.id and a.sub != b.sub
    assert len(a.sub) == 36 and a.sub != "alice"


def test_social_only_user_has_no_password(app, web):
    user = service.create_user("web", "carol", email="carol@example.com", password=None)
    assert user.password_hash is None
    assert service.to_dict(user)["has_password"] is False


def test_roles_assign_set_and_remove(app, web, make_role, make_user):
    make_role("web", "ROLE_ADMIN")
    make_role("web", "ROLE_VIEWER")
    make_user("web", "alice", roles=["ROLE_VIEWER"])
    user = service.assign_role("web", "alice", "ROLE_ADMIN")
    assert service.role_names(user) == ["ROLE_ADMIN", "ROLE_VIEWER"]
    service.set_roles("web", "alice", ["ROLE_ADMIN"])
    assert service.role_names(user) == ["ROLE_ADMIN"]
    service.remove_role("web", "alice", "ROLE_ADMIN")
    assert service.role_names(user) == []
    with pytest.raises(NotFound):
        service.assign_role("web", "alice", "ROLE_NOPE")


def test_set_password_checks_policy_and_disable(app, web, make_user):
    make_user("web", "alice")
    with pytest.raises(ValidationError, match="at least 8"):
        service.set_password("web", "alice", "short")
    user = service.set_password("web", "alice", "a new long password")
    assert service.password_matches("a new long password", user.password_hash)
    assert service.set_enabled("web", "alice", False).enabled is False


def test_changing_email_clears_verification(app, web, make_user):
    make_user("web", "alice", email_verified=True)
    user = service.update_user("web", "alice", email="new@example.com")
    assert user.email == "new@example.com" and user.email_verified is False


def test_list_users_searches_and_paginates(app, web, make_user):
    for n in range(7):
        make_user("web", f"user{n}", first_name="Zed" if n == 3 else "Anna")
    assert service.list_users(web, per_page=3, page=3).items[0].username == "user6"
    assert [u.username for u in service.list_users(web, "zed").items] == ["user3"]
