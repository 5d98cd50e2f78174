"""The `flask` commands, run through Flask's CLI runner."""

import json

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Client, Role, User, UserRole
from app.services import clients as client_service
from app.services import users as user_service


def run(runner, *args, input=None):
    return runner.invoke(args=list(args), input=input)


def counts():
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model)) for model in (Client, Role, User, UserRole)
    )


def test_init_is_idempotent_and_prints_the_password_once(runner):
    first = run(runner, "init")
    assert first.exit_code == 0, first.output
    assert "console admin: admin" in first.output
    password = first.output.split("password: ")[1].split()[0]
    console = client_service.get_client("authgate-console")
    admin = user_service.get_user(console, "admin")
    assert user_service.password_matches(password, admin.password_hash)
    assert user_service.role_names(admin) == ["ROLE_AUTHGATE_ADMIN"]
    assert console.redirect_uris == ["http://localhost:5000/admin/callback"]

    again = run(runner, "init")
    assert again.exit_code == 0, again.output
    assert "password" not in again.output
    assert counts() == (1, 1, 1, 1)


def test_init_takes_the_admin_password_from_the_option(runner):
    result = run(runner, "init", "--admin-password", "a chosen password")
    assert result.exit_code == 0 and "a chosen password" not in result.output
    admin = user_service.get_user(client_service.get_client("authgate-console"), "admin")
    assert user_service.password_matches("a chosen password", admin.password_hash)


def test_clients_create_json_list_show_rotate_delete(runner):
    result = run(
        runner,
        "clients",
        "create",
        "--client-id",
        "web",
        "--name",
        "Web app",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        "http://127.0.0.1:8765/cb",
        "--scope",
        "openid profile email roles offline_access",
        "--auth-method",
        "client_secret_basic",
        "--token-format",
        "opaque",
        "--signing-alg",
        "ES256",
        "--no-require-pkce",
        "--require-consent",
        "--json",
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["client_id"] == "web" and created["client_secret"].startswith("agcs_")
    client = client_service.get_client("web")
    assert client_service.verify_secret(client, created["client_secret"])
    assert client.scopes == ["openid", "profile", "email", "roles", "offline_access"]
    assert (client.token_format, client.signing_alg, client.require_pkce, client.require_consent) == (
        "opaque",
        "ES256",
        False,
        True,
    )

    listed = json.loads(run(runner, "clients", "list", "--json").output)
    assert [c["client_id"] for c in listed] == ["web"]
    shown = run(runner, "clients", "show", "web", "--json")
    data = json.loads(shown.output)
    assert data["grant_types"] == ["authorization_code", "refresh_token"] and data["users"] == 0
    assert created["client_secret"] not in shown.output and "secret_hash" not in shown.output

    rotated = json.loads(run(runner, "clients", "rotate-secret", "web", "--json").output)
    db.session.expire_all()
    assert client_service.verify_secret(client_service.get_client("web"), rotated["client_secret"])
    assert not client_service.verify_secret(client_service.get_client("web"), created["client_secret"])

    deleted = run(runner, "clients", "delete", "web", "--yes")
    assert deleted.exit_code == 0 and "0 users, 0 roles" in deleted.output
    assert counts()[0] == 0


def test_public_client_json_has_no_secret(runner):
    result = run(
        runner,
        "clients",
        "create",
        "--client-id",
        "spa",
        "--name",
        "SPA",
        "--public",
        "--redirect-uri",
        "http://localhost:3000/cb",
        "--grant-type",
        "authorization_code",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"client_id": "spa"}


def test_delete_asks_first(runner, make_client, make_user):
    make_client(client_id="web")
    make_user("web", "alice")
    result = run(runner, "clients", "delete", "web", input="n\n")
    assert "with its 1 users and 0 roles" in result.output
    assert result.exit_code == 1
    assert counts()[0] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "clients",
                "create",
                "--client-id",
                "Bad Id",
                "--name",
                "x",
                "--redirect-uri",
                "https://a.example/cb",
            ],
            "client_id: must be 3 to 64 characters",
        ),
        (
            [
                "clients",
                "create",
                "--client-id",
                "web",
                "--name",
                "x",
                "--redirect-uri",
                "http://evil.example/cb",
            ],
            "redirect_uris: 'http://evil.example/cb': plain http is only allowed for localhost",
        ),
        (
            ["clients", "create", "--client-id", "web", "--name", "x", "--grant-type", "authorization_code"],
            "redirect_uris: add at least one redirect URI",
        ),
        (
            [
                "clients",
                "create",
                "--client-id",
                "web",
                "--name",
                "x",
                "--public",
                "--grant-type",
                "client_credentials",
            ],
            "grant_types: client_credentials needs a confidential client",
        ),
        (
            [
                "clients",
                "create",
                "--client-id",
                "web",
                "--name",
                "x",
                "--redirect-uri",
                "https://a.example/cb",
                "--access-token-lifetime",
                "5",
            ],
            "access_token_lifetime: must be between 60 and 86400",
        ),
        (["clients", "show", "nope"], "no client 'nope'"),
        (["clients", "delete", "authgate-console", "--yes"], "cannot be deleted"),
        (["roles", "create", "--client", "nope", "--name", "ROLE_X"], "no client 'nope'"),
        (["roles", "create", "--client", "existing", "--name", "bad name"], "name: must start with a letter"),
        (
            ["users", "create", "--client", "existing", "--username", "bob", "--password", "short"],
            "password: must be at least 8 characters",
        ),
        (
            [
                "users",
                "create",
                "--client",
                "existing",
                "--username",
                "bob",
                "--email",
                "nope",
                "--password",
                "long enough",
            ],
            "email: is not a valid address",
        ),
        (
            [
                "users",
                "create",
                "--client",
                "existing",
                "--username",
                "bob",
                "--password",
                "long enough",
                "--role",
                "ROLE_OTHER",
            ],
            "roles: client 'existing' has no role 'ROLE_OTHER'",
        ),
        (
            ["users", "assign-role", "--client", "existing", "--username", "nobody", "--role", "ROLE_X"],
            "has no user 'nobody'",
        ),
        (["keys", "rotate", "--alg", "HS256"], "Invalid value for '--alg'"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(runner, make_client, make_role, args, message):
    make_client(client_id="existing")
    make_client(client_id="other")
    make_role("other", "ROLE_OTHER")
    before = counts()
    result = run(runner, *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and message in lines[0], result.output
    db.session.expire_all()
    assert counts() == before


def test_roles_and_users_commands(runner, make_client):
    make_client(client_id="web")
    assert (
        run(runner, "roles", "create", "--client", "web", "--name", "ROLE_ADMIN", "--description", "Admins").exit_code
        == 0
    )
    assert run(runner, "roles", "create", "--client", "web", "--name", "ROLE_VIEWER").exit_code == 0
    result = run(
        runner,
        "users",
        "create",
        "--client",
        "web",
        "--username",
        "alice",
        "--email",
        "a@example.com",
        "--first-name",
        "Alice",
        "--last-name",
        "Liddell",
        "--password",
        "wonderland!",
        "--role",
        "ROLE_ADMIN",
        "--json",
    )
    assert result.exit_code == 0, result.output
    alice = json.loads(result.output)
    assert alice["roles"] == ["ROLE_ADMIN"] and len(alice["sub"]) == 36 and "password" not in alice

    assert (
        run(runner, "users", "assign-role", "--client", "web", "--username", "alice", "--role", "ROLE_VIEWER").exit_code
        == 0
    )
    listed = json.loads(run(runner, "users", "list", "--client", "web", "--json").output)
    assert listed[0]["roles"] == ["ROLE_ADMIN", "ROLE_VIEWER"]
    roles = json.loads(run(runner, "roles", "list", "--client", "web", "--json").output)
    assert roles == [
        {"name": "ROLE_ADMIN", "description": "Admins", "users": 1},
        {"name": "ROLE_VIEWER", "description": "", "users": 1},
    ]

    assert (
        run(
            runner,
            "users",
            "set-password",
            "--client",
            "web",
            "--username",
            "alice",
            "--password",
            "through the looking glass",
        ).exit_code
        == 0
    )
    assert run(runner, "users", "disable", "--client", "web", "--username", "alice").exit_code == 0
    user = user_service.get_user(client_service.get_client("web"), "alice")
    assert user.enabled is False
    assert user_service.password_matches("through the looking glass", user.password_hash)

    result = run(runner, "roles", "delete", "--client", "web", "--name", "ROLE_ADMIN", "--yes")
    assert result.exit_code == 0
    assert user_service.role_names(user) == ["ROLE_VIEWER"]


def test_users_create_prompts_for_the_password(runner, make_client):
    make_client(client_id="web")
    result = run(
        runner,
        "users",
        "create",
        "--client",
        "web",
        "--username",
        "bob",
        input="a good password\na good password\n",
    )
    assert result.exit_code == 0, result.output
    assert "a good password" not in result.output


def test_keys_list_and_rotate(runner):
    listed = json.loads(run(runner, "keys", "list", "--json").output)
    assert sorted(k["alg"] for k in listed) == ["ES256", "EdDSA", "RS256"]
    rotated = run(runner, "keys", "rotate", "--alg", "ES256", "--json")
    assert rotated.exit_code == 0, rotated.output
    (new,) = json.loads(rotated.output)
    assert new["alg"] == "ES256" and new["state"] == "next"
    again = run(runner, "keys", "rotate", "--alg", "ES256")
    assert again.exit_code == 2 and "already pending" in again.output
    assert run(runner, "keys", "rotate", "--alg", "ES256", "--now").exit_code == 0


def test_purge_deletes_only_what_expired(runner, make_client, make_user):
    from datetime import UTC, datetime, timedelta

    from app.models import RevokedJti

    now = datetime.now(UTC)
    db.session.add_all([RevokedJti(jti="old", expires_at=now - timedelta(seconds=1)),
                        RevokedJti(jti="live", expires_at=now + timedelta(hours=1))])  # fmt: skip
    db.session.commit()
    result = run(runner, "purge")
    assert result.exit_code == 0 and "1 revoked jtis" in result.output
    assert db.session.scalars(sa.select(RevokedJti.jti)).all() == ["live"]


def test_clients_create_takes_the_refresh_token_idle_timeout_and_maximum(runner):
    base = ["clients", "create", "--client-id", "web", "--name", "Web", "--redirect-uri", "https://a.example/cb"]
    result = run(runner, *base, "--refresh-token-lifetime", "3600", "--refresh-token-max-lifetime", "86400")
    assert result.exit_code == 0, result.output
    shown = json.loads(run(runner, "clients", "show", "web", "--json").output)
    assert shown["refresh_token_lifetime"] == 3600 and shown["refresh_token_max_lifetime"] == 86400
    bad = run(
        runner, *base[:3], "web2", *base[4:], "--refresh-token-lifetime", "7200", "--refresh-token-max-lifetime", "3600"
    )
    assert bad.exit_code == 2 and "refresh_token_max_lifetime" in bad.output


def test_clients_update_changes_the_refresh_token_lifetimes(runner):
    create = ["clients", "create", "--client-id", "web", "--name", "Web", "--redirect-uri", "https://a.example/cb"]
    assert run(runner, *create).exit_code == 0
    lifetimes = ["--refresh-token-lifetime", "3600", "--refresh-token-max-lifetime", "86400"]
    result = run(runner, "clients", "update", "web", *lifetimes, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["refresh_token_lifetime"], data["refresh_token_max_lifetime"]) == (3600, 86400)
    too_short = run(runner, "clients", "update", "web", "--refresh-token-max-lifetime", "600")
    assert too_short.exit_code == 2 and len(too_short.output.strip().splitlines()) == 1
    assert run(runner, "clients", "update", "web").exit_code == 2
    assert run(runner, "clients", "update", "nope", "--name", "x").exit_code == 2
