"""Console roles and users of a client: create, list, search, assign, reset, disable, delete."""

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Role, User, UserRole
from app.services import clients as client_service
from app.services import idps as idp_service
from app.services import roles as role_service
from app.services import sessions as session_service
from app.services import users as user_service
from tests.integration.helpers import post, set_up_console, sign_in, text


@pytest.fixture
def admin(app, runner, client, make_client):
    set_up_console(app, runner)
    make_client(client_id="shop", name="Shop")
    make_client(client_id="blog", name="Blog")
    sign_in(client)
    return client


def roles_of(username: str, client_id: str = "shop") -> list[str]:
    db.session.expire_all()
    return user_service.role_names(user_service.get_user(client_service.get_client(client_id), username))


# --- roles -----------------------------------------------------------------------------


def test_roles_menu_goes_to_the_first_client_then_to_the_one_chosen(admin):
    first = admin.get("/admin/roles")
    assert first.status_code == 302 and first.headers["Location"] == "/admin/clients/blog/roles"
    chosen = admin.get("/admin/roles?client=shop")
    assert chosen.headers["Location"] == "/admin/clients/shop/roles"
    admin.get("/admin/clients/shop/roles")
    assert admin.get("/admin/roles").headers["Location"] == "/admin/clients/shop/roles"
    assert admin.get("/admin/users").headers["Location"] == "/admin/clients/shop/users"


def test_create_a_role_and_list_it_per_client(admin):
    response = post(admin, "/admin/clients/shop/roles", {"name": "ROLE_WRITER", "description": "Edits articles"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/clients/shop/roles"
    page = admin.get("/admin/clients/shop/roles")
    assert "ROLE_WRITER" in text(page) and "Edits articles" in text(page) and "Created role ROLE_WRITER." in text(page)
    assert "ROLE_WRITER" not in text(admin.get("/admin/clients/blog/roles"))
    role = role_service.get_role(client_service.get_client("shop"), "ROLE_WRITER")
    assert role.description == "Edits articles"


@pytest.mark.parametrize(
    ("name", "description", "error"),
    [
        ("", "", "Name is required."),
        ("1ROLE", "", "Name must start with a letter"),
        ("ROLE ADMIN", "", "Name must start with a letter"),
        ("ROLE_TAKEN", "", "already has a role"),
        ("ROLE_OK", "x" * 501, "Description must be at most 500 characters."),
    ],
)
def test_role_errors_show_next_to_their_field(admin, make_role, name, description, error):
    make_role("shop", "ROLE_TAKEN")
    response = post(admin, "/admin/clients/shop/roles", {"name": name, "description": description})
    assert response.status_code == 422
    assert error in text(response)
    assert f'value="{name}"' in text(response)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Role)) == 2  # console's + ROLE_TAKEN


def test_create_a_role_over_htmx_returns_the_panel(admin):
    headers = {"HX-Request": "true", "HX-Target": "roles_panel"}
    response = post(admin, "/admin/clients/shop/roles", {"name": "ROLE_X"}, headers=headers)
    assert response.status_code == 200
    assert text(response).lstrip().startswith('<div id="roles_panel"') and "Created role ROLE_X." in text(response)
    bad = post(admin, "/admin/clients/shop/roles", {"name": "9"}, headers=headers)
    assert bad.status_code == 422 and "Name must start with a letter" in text(bad)


def test_an_unassigned_role_is_deleted_at_once(admin, make_role):
    make_role("shop", "ROLE_UNUSED")
    response = post(admin, "/admin/clients/shop/roles/ROLE_UNUSED/delete")
    assert response.status_code == 303
    assert role_service.find_role(client_service.get_client("shop"), "ROLE_UNUSED") is None


def test_deleting_an_assigned_role_asks_first_and_says_who_has_it(admin, make_role, make_user):
    make_role("shop", "ROLE_ADMIN")
    make_user("shop", "alice", roles=["ROLE_ADMIN"])
    make_user("shop", "bob", roles=["ROLE_ADMIN"])
    listed = admin.get("/admin/clients/shop/roles")
    assert 'href="/admin/clients/shop/roles/ROLE_ADMIN/delete"' in text(listed)
    page = admin.get("/admin/clients/shop/roles/ROLE_ADMIN/delete")
    assert "<strong>2 users</strong>" in text(page) and "alice" in text(page) and "bob" in text(page)
    # A post without the confirmation (a stale list) asks instead of deleting.
    unconfirmed = post(admin, "/admin/clients/shop/roles/ROLE_ADMIN/delete")
    assert unconfirmed.status_code == 409 and "alice" in text(unconfirmed)
    assert role_service.find_role(client_service.get_client("shop"), "ROLE_ADMIN") is not None
    confirmed = post(admin, "/admin/clients/shop/roles/ROLE_ADMIN/delete", {"confirm": "yes"})
    assert confirmed.status_code == 303
    assert "2 users no longer hold it" in text(admin.get(confirmed.headers["Location"]))
    assert roles_of("alice") == []


def test_the_holders_list_is_short_for_a_popular_role(admin, make_role):
    make_role("shop", "ROLE_USER")
    client = client_service.get_client("shop")
    role = role_service.get_role(client, "ROLE_USER")
    db.session.execute(sa.insert(User), [{"client_pk": client.id, "username": f"u{n:03d}"} for n in range(45)])
    ids = db.session.scalars(sa.select(User.id).where(User.client_pk == client.id)).all()
    db.session.execute(sa.insert(UserRole), [{"client_pk": client.id, "user_id": i, "role_id": role.id} for i in ids])
    db.session.commit()
    page = text(admin.get("/admin/clients/shop/roles/ROLE_USER/delete"))
    assert "<strong>45 users</strong>" in page and "and 25 more" in page and "u019" in page and "u020" not in page


# --- users -----------------------------------------------------------------------------


NEW_USER = {
    "username": "alice",
    "email": "alice@example.com",
    "first_name": "Alice",
    "last_name": "Liddell",
    "password": "correct horse",
}


def test_create_a_user_with_a_password_and_roles(admin, make_role):
    make_role("shop", "ROLE_ADMIN")
    make_role("shop", "ROLE_VIEWER")
    form = admin.get("/admin/clients/shop/users/new")
    assert form.status_code == 200 and "ROLE_VIEWER" in text(form) and "No password — social login only" in text(form)
    response = post(admin, "/admin/clients/shop/users/new", {**NEW_USER, "roles": ["ROLE_ADMIN", "ROLE_VIEWER"]})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/clients/shop/users/alice"
    user = user_service.get_user(client_service.get_client("shop"), "alice")
    assert user.email == "alice@example.com" and user.full_name == "Alice Liddell"
    assert user_service.password_matches("correct horse", user.password_hash)
    assert roles_of("alice") == ["ROLE_ADMIN", "ROLE_VIEWER"]
    page = admin.get(response.headers["Location"])
    assert "Created user alice." in text(page) and "Alice Liddell" in text(page)


def test_create_a_social_login_only_user(admin):
    response = post(admin, "/admin/clients/shop/users/new", {**NEW_USER, "password": "", "no_password": "y"})
    assert response.status_code == 303
    assert user_service.get_user(client_service.get_client("shop"), "alice").password_hash is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"username": ""}, "Username is required."),
        ({"username": "al ice"}, "Username must be 1 to 64 characters"),
        ({"email": "not-an-email"}, "Email is not a valid address"),
        ({"password": "short"}, "Password must be at least 8 characters."),
        ({"password": ""}, "Password must be at least 8 characters."),
        ({"password": "Alice123", "username": "alice123"}, "Password must not be the username."),
        ({"password": "ü" * 40}, "Password must be at most 72 bytes."),
        ({"username": "taken"}, "is already taken in this client"),
        ({"email": "TAKEN@example.com"}, "is already used by another user of this client"),
        ({"first_name": "x" * 101}, "First name must be at most 100 characters."),
    ],
)
def test_user_errors_show_next_to_their_field_and_keep_the_input(admin, make_user, changes, error):
    make_user("shop", "taken", email="taken@example.com")
    data = {**NEW_USER, **changes}
    response = post(admin, "/admin/clients/shop/users/new", data)
    assert response.status_code == 422
    assert error in text(response)
    assert f'value="{data["first_name"][:20]}' in text(response)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 2


def test_only_the_clients_own_roles_can_be_given(admin, make_role, make_user):
    make_role("blog", "ROLE_BLOG_ADMIN")
    response = post(admin, "/admin/clients/shop/users/new", {**NEW_USER, "roles": ["ROLE_BLOG_ADMIN"]})
    assert response.status_code == 422 and "has no role" in text(response)
    assert user_service.find_user(client_service.get_client("shop"), "alice") is None
    make_user("shop", "bob")
    response = post(admin, "/admin/clients/shop/users/bob/roles", {"roles": ["ROLE_BLOG_ADMIN"]})
    assert response.status_code == 422 and "has no role" in text(response)
    assert roles_of("bob") == []


def test_the_same_username_under_two_clients_is_two_people(admin, make_user):
    make_user("blog", "alice", first_name="Blog Alice")
    response = post(admin, "/admin/clients/shop/users/new", NEW_USER)
    assert response.status_code == 303
    assert "Blog Alice" not in text(admin.get("/admin/clients/shop/users/alice"))
    assert "Blog Alice" in text(admin.get("/admin/clients/blog/users/alice"))


def test_users_list_searches_and_pages_in_the_database(admin, make_role, make_user):
    make_role("shop", "ROLE_ADMIN")
    client = client_service.get_client("shop")
    rows = [
        {"client_pk": client.id, "username": f"user{n:02d}", "email": f"user{n:02d}@example.com"} for n in range(30)
    ]
    db.session.execute(sa.insert(User), rows)
    db.session.commit()
    make_user("shop", "zelda", first_name="Zelda", roles=["ROLE_ADMIN"])
    page = admin.get("/admin/clients/shop/users")
    assert page.status_code == 200 and "1\u201325 of 31" in text(page) and "user24" in text(page)
    assert "zelda" in text(admin.get("/admin/clients/shop/users?page=2"))
    found = admin.get("/admin/clients/shop/users?q=ZELDA", headers={"HX-Request": "true", "HX-Target": "results"})
    assert (
        text(found).lstrip().startswith('<div id="results"') and "zelda" in text(found) and "user01" not in text(found)
    )
    assert "ROLE_ADMIN" in text(found)
    assert "No user of Shop matches" in text(admin.get("/admin/clients/shop/users?q=nobody"))
    assert "zelda" not in text(admin.get("/admin/clients/blog/users"))


def test_user_page_has_every_action_and_the_identities_hook(app, admin, make_user):
    make_user("shop", "alice")
    page = admin.get("/admin/clients/shop/users/alice")
    assert page.status_code == 200
    for heading in ("Profile", "Roles", "Status", "Password", "Delete user"):
        assert heading in text(page)
    # The social login work fills this block with the user's linked identities.
    assert "identities" in app.jinja_env.get_template("admin/user_detail.html").blocks
    assert admin.get("/admin/clients/shop/users/nobody").status_code == 404
    assert admin.get("/admin/clients/blog/users/alice").status_code == 404


def test_disable_and_enable_a_user(admin, make_user):
    make_user("shop", "alice")
    response = post(admin, "/admin/clients/shop/users/alice/enabled", {"enabled": "0"})
    assert response.status_code == 303
    db.session.expire_all()
    assert user_service.get_user(client_service.get_client("shop"), "alice").enabled is False
    assert "Disabled: the user can no longer sign in." in text(admin.get(response.headers["Location"]))
    htmx = post(admin, "/admin/clients/shop/users/alice/enabled", {"enabled": "1"},
                headers={"HX-Request": "true", "HX-Target": "status"})  # fmt: skip
    assert text(htmx).lstrip().startswith('<section id="status"') and "Enabled: the user can sign in." in text(htmx)
    db.session.expire_all()
    assert user_service.get_user(client_service.get_client("shop"), "alice").enabled is True
    assert post(admin, "/admin/clients/shop/users/alice/enabled", {"enabled": "maybe"}).status_code == 400


def test_set_exactly_the_roles_ticked(admin, make_role, make_user):
    for name in ("ROLE_A", "ROLE_B", "ROLE_C"):
        make_role("shop", name)
    make_user("shop", "alice", roles=["ROLE_A", "ROLE_B"])
    page = text(admin.get("/admin/clients/shop/users/alice"))
    assert re.findall(r'name="roles" value="(ROLE_\w)" checked', page) == ["ROLE_A", "ROLE_B"]
    response = post(admin, "/admin/clients/shop/users/alice/roles", {"roles": ["ROLE_B", "ROLE_C"]})
    assert response.status_code == 303
    assert roles_of("alice") == ["ROLE_B", "ROLE_C"]
    post(admin, "/admin/clients/shop/users/alice/roles", {})
    assert roles_of("alice") == []


def test_reset_or_remove_the_password(admin, make_user):
    make_user("shop", "alice", password="old password")
    bad = post(admin, "/admin/clients/shop/users/alice/password", {"password": "alice"})
    assert bad.status_code == 422 and "New password must be at least 8 characters." in text(bad)
    response = post(admin, "/admin/clients/shop/users/alice/password", {"password": "new password"},
                    headers={"HX-Request": "true", "HX-Target": "password_panel"})  # fmt: skip
    assert response.status_code == 200 and text(response).lstrip().startswith('<section id="password_panel"')
    assert "Password set." in text(response)
    db.session.expire_all()
    user = user_service.get_user(client_service.get_client("shop"), "alice")
    assert user_service.password_matches("new password", user.password_hash)
    post(admin, "/admin/clients/shop/users/alice/password", {"no_password": "y"})
    db.session.expire_all()
    assert user_service.get_user(client_service.get_client("shop"), "alice").password_hash is None


def test_edit_the_profile(admin, make_user):
    make_user("shop", "alice", email="alice@example.com")
    changes = {"email": "alice@new.example.com", "first_name": "Al", "last_name": "L", "email_verified": "y"}
    response = post(admin, "/admin/clients/shop/users/alice/profile", changes)
    assert response.status_code == 303
    db.session.expire_all()
    user = user_service.get_user(client_service.get_client("shop"), "alice")
    assert (user.email, user.first_name, user.email_verified) == ("alice@new.example.com", "Al", True)
    bad = post(admin, "/admin/clients/shop/users/alice/profile", {"email": "nope"})
    assert bad.status_code == 422 and "Email is not a valid address" in text(bad) and 'value="nope"' in text(bad)


def test_delete_a_user_after_confirming(admin, make_user):
    make_user("shop", "alice")
    page = admin.get("/admin/clients/shop/users/alice/delete")
    assert "cannot be undone" in text(page)
    response = post(admin, "/admin/clients/shop/users/alice/delete")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/clients/shop/users"
    assert user_service.find_user(client_service.get_client("shop"), "alice") is None


def test_forms_without_the_csrf_token_are_refused(admin, make_user):
    make_user("shop", "alice")
    response = admin.post("/admin/clients/shop/users/alice/delete", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert user_service.find_user(client_service.get_client("shop"), "alice") is not None


def test_the_console_admin_role_cannot_be_deleted(admin):
    roles = text(admin.get("/admin/clients/authgate-console/roles"))
    assert "Always kept" in roles and "/roles/ROLE_AUTHGATE_ADMIN/delete" not in roles
    response = post(admin, "/admin/clients/authgate-console/roles/ROLE_AUTHGATE_ADMIN/delete", {"confirm": "yes"})
    assert response.status_code == 409 and "without it no one can use the console" in text(response)
    assert role_service.find_role(client_service.get_client("authgate-console"), "ROLE_AUTHGATE_ADMIN")


@pytest.mark.parametrize(
    ("path", "data", "error"),
    [
        ("enabled", {"enabled": "0"}, "You cannot disable yourself"),
        ("roles", {"roles": []}, "You cannot take ROLE_AUTHGATE_ADMIN from yourself"),
        ("delete", {}, "You cannot delete yourself"),
    ],
)
def test_an_admin_cannot_lock_themselves_out(admin, path, data, error):
    response = post(admin, f"/admin/clients/authgate-console/users/admin/{path}", data)
    assert response.status_code in (409, 422) and error in text(response)
    assert admin.get("/admin/").status_code == 200
    assert roles_of("admin", "authgate-console") == ["ROLE_AUTHGATE_ADMIN"]


# --- what the user page tells the admin ----------------------------------------------------


def test_the_new_password_label_names_its_input(admin, make_user):
    make_user("shop", "alice")
    page = text(admin.get("/admin/clients/shop/users/alice"))
    assert '<label for="password">New password</label>' in page
    # The one element with that id is the input: the panel around it has another.
    assert re.findall(r'<(\w+)[^>]*\bid="password"', page) == ["input"]


@pytest.mark.parametrize("url", ["/admin/clients/shop/users/new", "/admin/clients/shop/users/alice", "/admin/keys"])
def test_fields_describe_only_what_is_there(admin, make_user, url):
    make_user("shop", "alice")
    page = text(admin.get(url))
    assert 'aria-describedby="None"' not in page
    for names in re.findall(r'aria-describedby="([^"]+)"', page):
        for name in names.split():
            assert f'id="{name}"' in page


def test_a_fields_error_is_part_of_its_description(admin):
    response = post(admin, "/admin/clients/shop/users/new", {**NEW_USER, "password": "short"})
    page = text(response)
    assert response.status_code == 422
    assert re.search(
        r'<input aria-describedby="password-hint password-error" aria-invalid="true"[^>]*id="password"', page
    )
    assert '<div id="password-error" class="field-error">Password must be at least 8 characters.</div>' in page


def test_times_on_the_user_page_say_their_zone(admin, make_user):
    user = make_user("shop", "alice")
    page = text(admin.get("/admin/clients/shop/users/alice"))
    created = user.created_at
    assert (
        f'<dt>Created</dt><dd><time datetime="{created.isoformat()}" title="{created:%Y-%m-%d %H:%M:%S} UTC">'
        f"<span>{created:%Y-%m-%d}</span> <span>{created:%H:%M} UTC</span></time></dd>"
    ) in page


def test_session_and_consent_times_say_their_zone(admin, make_user):
    user = make_user("shop", "alice")
    client = client_service.get_client("shop")
    started = session_service.start(client, user, amr=["pwd"], ip="203.0.113.7", user_agent="Firefox")
    session_service.grant_consent(client, user, ["openid"])
    page = text(admin.get("/admin/clients/shop/users/alice"))
    assert (
        f"><span>{started.created_at:%Y-%m-%d}</span> <span>{started.created_at:%H:%M} UTC</span></time></td>" in page
    )
    assert re.search(
        r"Allowed <code class=\"tag\">openid</code> on "
        r"<time[^>]*><span>\d{4}-\d\d-\d\d</span> <span>\d\d:\d\d UTC</span></time>",
        page,
    )


CANNOT_SIGN_IN = "alice has no password and Shop has no {}: they cannot sign in. Set a password, or give Shop an {}."


def test_a_user_who_cannot_sign_in_at_all_is_warned_about(admin):
    """No password, and the client has no identity provider: nothing lets the user in, and the console says so."""
    form = text(admin.get("/admin/clients/shop/users/new"))
    assert "Shop offers no identity provider yet: without a password they cannot sign in until it does." in form
    created = post(admin, "/admin/clients/shop/users/new", {**NEW_USER, "password": "", "no_password": "y"})
    assert created.status_code == 303
    page = text(admin.get(created.headers["Location"]))
    assert (
        '<div class="alert alert-warning" role="status">Created user alice, who cannot sign in yet (see Password).'
        in page
    )
    assert CANNOT_SIGN_IN.format("identity provider", "identity provider") in page
    assert "Cannot sign in yet (see Password)." in page and "Can sign in." not in page
    # A disabled provider lets no one in either.
    idp_service.create_provider("shop", "github", upstream_client_id="x", client_secret="y", enabled=False)
    page = text(admin.get("/admin/clients/shop/users/alice"))
    assert CANNOT_SIGN_IN.format("enabled identity provider", "enabled identity provider") in page
    idp_service.set_enabled("shop", "github", True)
    page = text(admin.get("/admin/clients/shop/users/alice"))
    assert "cannot sign in" not in page and "Can sign in." in page
    assert "offers no identity provider" not in text(admin.get("/admin/clients/shop/users/new"))


def test_removing_the_password_warns_in_the_block_that_changed(admin, make_user):
    make_user("shop", "alice")
    assert "cannot sign in" not in text(admin.get("/admin/clients/shop/users/alice"))
    response = post(admin, "/admin/clients/shop/users/alice/password", {"no_password": "y"},
                    headers={"HX-Request": "true", "HX-Target": "password_panel"})  # fmt: skip
    assert text(response).lstrip().startswith('<section id="password_panel"')
    assert "Password removed" in text(response)
    assert CANNOT_SIGN_IN.format("identity provider", "identity provider") in text(response)


def test_a_user_with_a_password_is_created_without_a_warning(admin):
    created = post(admin, "/admin/clients/shop/users/new", NEW_USER)
    page = text(admin.get(created.headers["Location"]))
    assert '<div class="alert alert-success" role="status">Created user alice.</div>' in page
    assert "cannot sign in" not in page
