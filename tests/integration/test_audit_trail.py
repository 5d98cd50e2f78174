"""Every admin change, made in the console or with a `flask` command, is recorded with who made it and what changed.

Never a secret: the values a test hands to the console or the CLI (passwords, client secrets) and
what the server derives from them (hashes, ciphertexts) appear in no recorded event.
"""

import getpass
import json
import re

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import AuditEvent, Client, IdentityProvider, User
from app.services import audit
from app.services import clients as client_service
from app.services.crypto import sha256_hex
from tests.integration.helpers import ADMIN_PASSWORD, post, set_up_console, sign_in, text
from tests.integration.test_user_sessions import signed_in_alice

ADMIN = "admin:admin"
CLI = f"cli:{getpass.getuser()}"
USER_PASSWORD = "a user's own password"
NEW_PASSWORD = "another good password"
UPSTREAM_SECRET = "upstream-secret-never-recorded"


@pytest.fixture
def admin(shop_admin):
    return shop_admin


def events(*kinds: str) -> list[AuditEvent]:
    db.session.expire_all()
    query = sa.select(AuditEvent).options(joinedload(AuditEvent.client)).order_by(AuditEvent.id)
    if kinds:
        query = query.where(AuditEvent.kind.in_(kinds))
    return list(db.session.scalars(query))


def last(kind: str) -> AuditEvent:
    found = events(kind)
    assert found, f"no {kind} event"
    return found[-1]


def recorded_text() -> str:
    """Everything the audit log holds, as one string to look for secrets in."""
    return json.dumps([[e.kind, e.username, e.actor, e.detail] for e in events()], default=str)


def assert_never_recorded(*secrets: str | None) -> None:
    held = recorded_text()
    for secret in secrets:
        assert secret and secret not in held


def wizard(admin, url: str, **changes):
    """Save a web application through the wizard's last step."""
    fields = {
        "step": "5", "reached": "5", "action": "save", "client_id": "web", "name": "Web",
        "description": "", "token_endpoint_auth_methods": ["client_secret_basic"],
        "grant_types": ["authorization_code", "refresh_token"], "jwks": "",
        "redirect_uris": ["https://web.example.com/callback"], "post_logout_redirect_uris": [],
        "scopes": ["openid", "profile"], "access_token_lifetime": "3600", "refresh_token_lifetime": "2592000",
        "refresh_token_max_lifetime": "7776000", "require_pkce": "1", "token_format": "jwt", "signing_alg": "RS256",
        "require_consent": "0", **changes,
    }  # fmt: skip
    response = post(admin, url, fields)
    assert response.status_code == 303, text(response)[:500]


def shown_secret(admin, client_id: str) -> str:
    page = text(admin.get(f"/admin/clients/{client_id}"))
    return re.search(r'id="client-secret" class="secret-value">([^<]+)<', page).group(1)


# --- the console ---------------------------------------------------------------------------


def test_console_client_changes_name_the_admin_and_what_changed(admin):
    wizard(admin, "/admin/clients/new")
    first_secret = shown_secret(admin, "web")
    created = last(audit.CLIENT_CREATED)
    assert created.actor == ADMIN and created.client.client_id == "web"
    changes = created.detail["changes"]
    assert changes["name"] == [None, "Web"] and changes["redirect_uris"] == [None, ["https://web.example.com/callback"]]
    assert changes["client_secret"] == "set" and "description" not in changes  # blank to blank is no change

    wizard(admin, "/admin/clients/web/edit", name="Web 2", access_token_lifetime="600")
    updated = last(audit.CLIENT_UPDATED)
    assert updated.actor == ADMIN
    assert updated.detail["changes"] == {"name": ["Web", "Web 2"], "access_token_lifetime": [3600, 600]}

    assert post(admin, "/admin/clients/web/rotate-secret").status_code == 303
    second_secret = shown_secret(admin, "web")
    rotated = last(audit.CLIENT_SECRET_ROTATED)
    assert (rotated.actor, rotated.detail) == (ADMIN, {"changes": {"client_secret": "rotated"}})
    hashes = [client_service.get_client("web").secret_hash, sha256_hex(first_secret)]

    assert post(admin, "/admin/clients/web/delete", {"confirm": "web"}).status_code == 303
    deleted = last(audit.CLIENT_DELETED)
    assert deleted.actor == ADMIN and deleted.detail == {"client_id": "web", "name": "Web 2", "users": 0, "roles": 0}
    assert_never_recorded(first_secret, second_secret, *hashes)


def test_console_role_and_user_changes_name_the_admin_and_what_changed(admin):
    shop = "/admin/clients/shop"
    assert post(admin, f"{shop}/roles", {"name": "ROLE_EDITOR", "description": "Edits"}).status_code == 303
    assert post(admin, f"{shop}/roles", {"name": "ROLE_VIEWER"}).status_code == 303
    role = last(audit.ROLE_CREATED)
    assert (role.actor, role.client.client_id, role.detail) == (ADMIN, "shop", {"role": "ROLE_VIEWER", "changes": {}})

    new_user = {"username": "bob", "email": "bob@example.com", "password": USER_PASSWORD, "roles": ["ROLE_VIEWER"]}
    assert post(admin, f"{shop}/users/new", new_user).status_code == 303
    created = last(audit.USER_CREATED)
    assert (created.actor, created.username, created.client.client_id) == (ADMIN, "bob", "shop")
    assert created.detail["changes"] == {
        "email": [None, "bob@example.com"], "enabled": [None, True], "email_verified": [None, False],
        "password": "set", "roles": [None, ["ROLE_VIEWER"]],
    }  # fmt: skip

    bob = f"{shop}/users/bob"
    profile = {"email": "bob@example.com", "first_name": "Bob", "last_name": "", "email_verified": "y"}
    assert post(admin, f"{bob}/profile", profile).status_code == 303
    updated = last(audit.USER_UPDATED)
    assert updated.actor == ADMIN
    assert updated.detail["changes"] == {"first_name": ["", "Bob"], "email_verified": [False, True]}

    assert post(admin, f"{bob}/password", {"password": NEW_PASSWORD}).status_code == 303
    password = last(audit.USER_PASSWORD_SET)
    assert (password.actor, password.detail) == (ADMIN, {"changes": {"password": "changed"}})

    assert post(admin, f"{bob}/roles", {"roles": ["ROLE_EDITOR"]}).status_code == 303
    roles = last(audit.USER_ROLES_CHANGED)
    assert (roles.actor, roles.detail) == (ADMIN, {"changes": {"roles": [["ROLE_VIEWER"], ["ROLE_EDITOR"]]}})

    assert post(admin, f"{bob}/enabled", {"enabled": "0"}).status_code == 303
    assert last(audit.USER_UPDATED).detail["changes"] == {"enabled": [True, False]}
    ended = last(audit.SIGNED_OUT_EVERYWHERE)
    assert (ended.actor, ended.username, ended.detail["reason"]) == (ADMIN, "bob", "disabled")

    assert post(admin, f"{bob}/sign-out").status_code == 303
    assert last(audit.SIGNED_OUT_EVERYWHERE).detail["reason"] == "signed_out_by_admin"

    hash_of_bob = db.session.scalar(sa.select(User.password_hash).where(User.username == "bob"))
    assert post(admin, f"{bob}/delete", {"confirm": "bob"}).status_code == 303
    deleted = last(audit.USER_DELETED)
    assert (deleted.actor, deleted.username, deleted.client.client_id) == (ADMIN, "bob", "shop")

    assert post(admin, f"{shop}/roles/ROLE_EDITOR/delete", {"confirm": "yes"}).status_code == 303
    role_gone = last(audit.ROLE_DELETED)
    assert (role_gone.actor, role_gone.detail) == (ADMIN, {"role": "ROLE_EDITOR", "holders": 0})
    assert_never_recorded(USER_PASSWORD, NEW_PASSWORD, hash_of_bob)


def test_console_identity_provider_changes_name_the_admin_and_never_the_secret(admin, make_role):
    make_role("shop", "ROLE_VIEWER")
    base = "/admin/clients/shop/identity-providers"
    github = {"type": "github", "slug": "github", "name": "GitHub", "upstream_client_id": "Iv1.abc",
              "client_secret": UPSTREAM_SECRET, "scopes": "read:user user:email", "web_url": "https://github.com",
              "api_url": "https://api.github.com", "auto_create": "y", "enabled": "y"}  # fmt: skip
    assert post(admin, f"{base}/new", github).status_code == 303
    created = last(audit.IDP_CREATED)
    assert (created.actor, created.detail["idp"]) == (ADMIN, "github")
    assert created.detail["changes"]["client_secret"] == "set"
    assert created.detail["changes"]["type"] == [None, "github"]

    edit = {
        **github,
        "name": "GitHub Enterprise",
        "client_secret": UPSTREAM_SECRET + "-2",
        "default_roles": ["ROLE_VIEWER"],
    }
    assert post(admin, f"{base}/github", edit).status_code == 303
    updated = last(audit.IDP_UPDATED)
    assert updated.actor == ADMIN and updated.detail["changes"] == {
        "name": ["GitHub", "GitHub Enterprise"], "default_roles": [[], ["ROLE_VIEWER"]], "client_secret": "changed",
    }  # fmt: skip

    assert post(admin, f"{base}/github/enabled", {"enabled": "0"}).status_code == 303
    assert last(audit.IDP_UPDATED).detail["changes"] == {"enabled": [True, False]}
    ciphertext = db.session.scalar(sa.select(IdentityProvider.client_secret_encrypted))

    assert post(admin, f"{base}/github/delete", {"confirm": "yes"}).status_code == 303
    deleted = last(audit.IDP_DELETED)
    assert (deleted.actor, deleted.detail) == (
        ADMIN, {"idp": "github", "name": "GitHub Enterprise", "linked_identities": 0},
    )  # fmt: skip
    assert_never_recorded(UPSTREAM_SECRET, ciphertext)


def test_console_revocations_of_a_users_sign_ins_name_the_admin(app, runner, client, make_client, make_user):
    set_up_console(app, runner)
    _, browser_session, family = signed_in_alice(make_client, make_user)
    sign_in(client)
    base = "/admin/clients/shop/users/alice"
    assert post(client, f"{base}/sessions/{browser_session.id}/end").status_code == 303
    assert post(client, f"{base}/offline/{family}/revoke").status_code == 303
    assert post(client, f"{base}/consent/revoke").status_code == 303
    recorded = [(e.kind, e.actor, e.username, e.detail) for e in events()[-3:]]
    assert recorded == [
        (audit.SESSION_ENDED, ADMIN, "alice", {"session": browser_session.id[:8]}),
        (audit.OFFLINE_GRANT_REVOKED, ADMIN, "alice", {"family": family[:8]}),
        (audit.CONSENT_REVOKED, ADMIN, "alice", {"scopes": ["offline_access", "openid"]}),
    ]
    assert_never_recorded(browser_session.id)  # a credential: the browser's cookie holds it


def test_console_key_rotation_and_revocation_name_the_admin(admin):
    assert post(admin, "/admin/keys", {"alg": "ES256"}).status_code == 303
    rotated = last(audit.KEYS_ROTATED)
    assert rotated.actor == ADMIN
    kid = rotated.detail["kids"]
    assert post(admin, f"/admin/keys/{kid}/revoke", {"confirm": kid}).status_code == 303
    revoked = last(audit.KEY_REVOKED)
    assert (revoked.actor, revoked.detail["kid"]) == (ADMIN, kid)


def test_what_people_do_themselves_has_no_actor_and_a_request_leaves_none_behind(admin, make_user):
    # The admin's own sign-in to the console (the fixture's) is theirs, not an admin action.
    (sign_in_event,) = events(audit.LOGIN_SUCCEEDED)
    assert (sign_in_event.username, sign_in_event.actor) == ("admin", None)
    admin.get("/admin/")
    make_user("shop", "carol")  # a service called outside any console request or command
    assert last(audit.USER_CREATED).actor is None


# --- the command line ----------------------------------------------------------------------


def test_cli_changes_name_the_operating_system_user(runner):
    def run(*args):
        result = runner.invoke(args=list(args))
        assert result.exit_code == 0, result.output
        return result.output

    output = run("clients", "create", "--client-id", "api", "--name", "API", "--grant-type", "client_credentials")
    secret = re.search(r"(agcs_\S+)", output).group(1)
    assert last(audit.CLIENT_CREATED).actor == CLI
    rotated = re.search(r"(agcs_\S+)", run("clients", "rotate-secret", "api")).group(1)
    assert last(audit.CLIENT_SECRET_ROTATED).actor == CLI
    run("clients", "update", "api", "--name", "The API")
    assert last(audit.CLIENT_UPDATED).detail["changes"] == {"name": ["API", "The API"]}

    run("roles", "create", "--client", "api", "--name", "ROLE_OPS")
    run("users", "create", "--client", "api", "--username", "dave", "--password", USER_PASSWORD)
    run("users", "set-password", "--client", "api", "--username", "dave", "--password", NEW_PASSWORD)
    run("users", "assign-role", "--client", "api", "--username", "dave", "--role", "ROLE_OPS")
    run("users", "remove-role", "--client", "api", "--username", "dave", "--role", "ROLE_OPS")
    run("users", "disable", "--client", "api", "--username", "dave")
    run("users", "sign-out", "--client", "api", "--username", "dave")
    run(
        "idps", "create", "--client", "api", "--type", "github", "--client-id", "Iv1.x",
        "--client-secret", UPSTREAM_SECRET,
    )  # fmt: skip
    run("idps", "disable", "--client", "api", "--slug", "github")
    run("idps", "delete", "--client", "api", "--slug", "github", "--yes")
    run("keys", "rotate", "--alg", "ES256")
    run("roles", "delete", "--client", "api", "--name", "ROLE_OPS", "--yes")
    run("clients", "delete", "api", "--yes")

    recorded = events()
    roles = [e.detail["changes"]["roles"] for e in recorded if e.kind == audit.USER_ROLES_CHANGED]
    assert roles == [[[], ["ROLE_OPS"]], [["ROLE_OPS"], []]]
    kinds = [e.kind for e in recorded]
    for kind in (audit.ROLE_CREATED, audit.USER_CREATED, audit.USER_PASSWORD_SET, audit.USER_UPDATED,
                 audit.SIGNED_OUT_EVERYWHERE, audit.IDP_CREATED, audit.IDP_UPDATED, audit.IDP_DELETED,
                 audit.KEYS_ROTATED, audit.ROLE_DELETED, audit.CLIENT_DELETED):  # fmt: skip
        assert kind in kinds
    assert {e.actor for e in recorded} == {CLI}
    assert_never_recorded(secret, rotated, USER_PASSWORD, NEW_PASSWORD, UPSTREAM_SECRET)


def test_flask_init_records_the_console_it_sets_up(app, runner):
    result = runner.invoke(args=["init", "--admin-password", ADMIN_PASSWORD])
    assert result.exit_code == 0, result.output
    made = {(e.kind, e.actor) for e in events()}
    assert {(audit.CLIENT_CREATED, CLI), (audit.ROLE_CREATED, CLI), (audit.USER_CREATED, CLI)} <= made
    runner.invoke(args=["init"])
    assert len(events(audit.CLIENT_UPDATED)) == 0  # nothing changed, nothing recorded
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 1
    assert_never_recorded(ADMIN_PASSWORD)
