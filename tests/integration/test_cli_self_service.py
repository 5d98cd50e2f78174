"""`flask clients create` and `flask clients update` with the self-service settings, and update's other settings."""

import json

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Client, Role
from app.services import clients as client_service

BASE = ["clients", "create", "--client-id", "web", "--name", "Web", "--redirect-uri", "http://127.0.0.1:8765/cb"]


def run(runner, *args):
    return runner.invoke(args=list(args))


def settings(client_id: str = "web") -> dict:
    db.session.expire_all()
    return client_service.to_dict(client_service.get_client(client_id))


def defaults_of(client_id: str = "web") -> dict[str, bool]:
    db.session.expire_all()
    client = client_service.get_client(client_id)
    return {
        role.name: role.is_default for role in db.session.scalars(sa.select(Role).where(Role.client_pk == client.id))
    }


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_create_is_off_by_default(runner):
    assert run(runner, *BASE).exit_code == 0
    data = settings()
    assert data["allow_registration"] is False and data["require_verified_email"] is False
    assert data["default_roles"] == []


def test_create_turns_everything_on_and_creates_the_default_roles(runner, make_client, make_role):
    result = run(
        runner, *BASE, "--allow-registration", "--require-verified-email",
        "--default-role", "ROLE_MEMBER", "--default-role", "ROLE_READER", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["client_id"] == "web"
    data = settings()
    assert data["allow_registration"] is True and data["require_verified_email"] is True
    assert data["default_roles"] == ["ROLE_MEMBER", "ROLE_READER"]
    assert defaults_of() == {"ROLE_MEMBER": True, "ROLE_READER": True}

    shown = run(runner, "clients", "show", "web")
    assert "default_roles:" in shown.output and "ROLE_MEMBER ROLE_READER" in shown.output
    off = run(runner, "clients", "create", "--client-id", "api", "--name", "API", "--redirect-uri",
              "http://127.0.0.1:8765/cb", "--no-allow-registration", "--no-require-verified-email")  # fmt: skip
    assert off.exit_code == 0 and settings("api")["allow_registration"] is False


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--default-role", "1BAD"], "'1BAD' is not a role name"),
        (["--default-role", "ROLE_OK", "--default-role", "bad/name"], "'bad/name' is not a role name"),
        (["--grant-type", "nope"], "Invalid value for '--grant-type'"),
    ],
)
def test_create_with_bad_input_exits_non_zero_and_makes_nothing(runner, args, error):
    result = run(runner, *BASE, *args)
    assert result.exit_code == 2
    assert error in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Role)) == 0


def test_update_changes_the_self_service_settings_and_prints_json(runner, make_client, make_role):
    make_client(client_id="web", name="Web")
    make_role("web", "ROLE_MEMBER")
    make_role("web", "ROLE_STAFF")
    result = run(
        runner, "clients", "update", "web", "--allow-registration", "--require-verified-email",
        "--default-role", "ROLE_MEMBER", "--default-role", "role_staff", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["allow_registration"] is True and printed["require_verified_email"] is True
    assert printed["default_roles"] == ["ROLE_MEMBER", "ROLE_STAFF"] and "client_secret" not in printed
    assert printed == {**settings(), "created_at": printed["created_at"]}

    result = run(runner, "clients", "update", "web", "--default-role", "ROLE_STAFF")
    assert result.exit_code == 0 and result.output == "Updated client web: default_roles.\n"
    assert defaults_of() == {"ROLE_MEMBER": False, "ROLE_STAFF": True}

    result = run(runner, "clients", "update", "web", "--no-default-roles", "--no-allow-registration")
    assert result.exit_code == 0, result.output
    assert defaults_of() == {"ROLE_MEMBER": False, "ROLE_STAFF": False}
    assert settings()["allow_registration"] is False and settings()["require_verified_email"] is True

    updated = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.kind == "client_updated").order_by(AuditEvent.id)
    ).all()
    assert updated[-1].actor.startswith("cli:")
    assert updated[-1].detail["changes"] == {"allow_registration": [True, False], "default_roles": [["ROLE_STAFF"], []]}


def test_update_changes_the_other_settings_too(runner, make_client):
    make_client(client_id="web", name="Web")
    result = run(
        runner, "clients", "update", "web", "--name", "Web 2", "--description", "The web app",
        "--redirect-uri", "https://web.example.com/cb", "--redirect-uri", "https://web.example.com/cb2",
        "--post-logout-redirect-uri", "https://web.example.com/", "--scope", "openid email",
        "--access-token-lifetime", "600", "--refresh-token-lifetime", "3600", "--refresh-token-max-lifetime", "7200",
        "--token-format", "opaque", "--signing-alg", "ES256", "--no-require-pkce", "--require-consent",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = settings()
    assert data["name"] == "Web 2" and data["description"] == "The web app"
    assert data["redirect_uris"] == ["https://web.example.com/cb", "https://web.example.com/cb2"]
    assert data["post_logout_redirect_uris"] == ["https://web.example.com/"]
    assert data["scopes"] == ["openid", "email"]
    assert (data["access_token_lifetime"], data["refresh_token_lifetime"], data["refresh_token_max_lifetime"]) == (
        600, 3600, 7200,
    )  # fmt: skip
    assert (data["token_format"], data["signing_alg"]) == ("opaque", "ES256")
    assert data["require_pkce"] is False and data["require_consent"] is True


def test_update_to_a_secret_method_prints_the_new_secret_once(runner, make_client):
    make_client(client_id="spa", name="SPA", token_endpoint_auth_methods=["none"])
    result = run(runner, "clients", "update", "spa", "--auth-method", "client_secret_post", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["token_endpoint_auth_methods"] == ["client_secret_post"]
    assert client_service.verify_secret(client_service.get_client("spa"), printed["client_secret"])


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["nope", "--allow-registration"], "Error: no client 'nope'"),
        (["web", "--default-role", "ROLE_TYPO"], "Error: default_roles: client 'web' has no role 'ROLE_TYPO'"),
        (["web", "--default-role", "ROLE_MEMBER", "--no-default-roles"], "cannot be combined with --default-role"),
        (["web"], "Error: nothing to change"),
        (["web", "--allow-registration", "--access-token-lifetime", "5"], "must be between 60 and 86400 seconds"),
        (["web", "--public", "--auth-method", "client_secret_basic"], "--public cannot be combined"),
        (["web", "--client-id", "other"], None),
    ],
)
def test_update_with_bad_input_exits_non_zero_in_one_line_and_changes_nothing(
    runner, make_client, make_role, args, error
):
    make_client(client_id="web", name="Web")
    make_role("web", "ROLE_MEMBER")
    before = settings()
    result = run(runner, "clients", "update", *args)
    if error is None:  # click's own usage error, several lines
        assert result.exit_code == 2 and "No such option '--client-id'" in result.output
    else:
        assert error in one_line_error(result)
    assert settings() == before
    assert defaults_of() == {"ROLE_MEMBER": False}


def test_the_help_texts_name_the_new_options(runner):
    create = run(runner, "clients", "create", "--help").output
    update = run(runner, "clients", "update", "--help").output
    for option in ("--allow-registration / --no-allow-registration", "--require-verified-email", "--default-role"):
        assert option in create and option in update
    assert "--no-default-roles" in update and "must exist" in update
