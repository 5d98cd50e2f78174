"""Second factors from the CLI: `clients create/update --mfa`, `users reset-factors`, `users show`, and `init`."""

import json

import pyotp
import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Client
from app.services import clients as client_service
from app.services import mfa
from app.services import users as user_service
from tests.integration.test_cli_self_service import BASE, one_line_error, run, settings


def events(kind: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))


def the_error(result) -> str:
    """Click's own usage errors come after its usage lines; the error itself is one line."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_create_is_off_unless_told_and_show_says_the_policy(runner):
    assert run(runner, *BASE).exit_code == 0
    assert settings()["mfa_policy"] == "off"

    result = run(runner, "clients", "create", "--client-id", "bank", "--name", "Bank",
                 "--redirect-uri", "http://127.0.0.1:8765/cb", "--mfa", "required")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert settings("bank")["mfa_policy"] == "required"
    shown = run(runner, "clients", "show", "bank")
    assert any(line.split() == ["mfa_policy:", "required"] for line in shown.output.splitlines()), shown.output
    assert json.loads(run(runner, "clients", "show", "bank", "--json").output)["mfa_policy"] == "required"


def test_update_changes_the_policy_prints_json_and_the_audit_log_has_it(runner, make_client):
    make_client(client_id="web", name="Web")
    result = run(runner, "clients", "update", "web", "--mfa", "optional", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["mfa_policy"] == "optional" and settings()["mfa_policy"] == "optional"

    result = run(runner, "clients", "update", "web", "--mfa", "off")
    assert result.exit_code == 0 and result.output == "Updated client web: mfa_policy.\n"
    assert settings()["mfa_policy"] == "off"
    changes = [event.detail["changes"] for event in events("client_updated")]
    assert changes == [{"mfa_policy": ["off", "optional"]}, {"mfa_policy": ["optional", "off"]}]
    assert events("client_updated")[-1].actor.startswith("cli:")


@pytest.mark.parametrize("value", ["sometimes", "", "on"])
def test_a_bad_policy_exits_2_with_one_error_and_changes_nothing(runner, make_client, value):
    created = run(runner, *BASE[:-2], "--client-id", "x", "--redirect-uri", "http://127.0.0.1:8765/cb",
                  "--mfa", value)  # fmt: skip
    assert "Invalid value for '--mfa'" in the_error(created)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0

    make_client(client_id="web", name="Web", mfa_policy="optional")
    updated = run(runner, "clients", "update", "web", "--mfa", value)
    assert "Invalid value for '--mfa'" in the_error(updated)
    assert settings()["mfa_policy"] == "optional"


def test_the_help_explains_each_policy(runner):
    help_text = " ".join(run(runner, "clients", "create", "--help").output.split())
    assert "--mfa [off|optional|required]" in help_text
    for text in mfa.POLICY_TEXT.values():
        assert " ".join(text.split()) in help_text


# --- users -----------------------------------------------------------------------------------


@pytest.fixture
def alice(make_client, make_user):
    """alice of `web` (policy optional), with an authenticator app."""
    client, _ = make_client(client_id="web", name="Web", mfa_policy="optional")
    user = make_user("web", "alice")
    secret = mfa.start_totp(client, user)
    mfa.confirm_totp(client, user, pyotp.TOTP(secret).now())
    return user


def alice_has_a_factor() -> bool:
    db.session.expire_all()
    return mfa.has_factor(user_service.get_user(client_service.get_client("web"), "alice"))


def test_users_show_lists_the_factors(runner, alice):
    shown = run(runner, "users", "show", "--client", "web", "--username", "alice")
    assert shown.exit_code == 0, shown.output
    assert "second_factors:  authenticator app, 10 recovery codes left" in shown.output
    data = json.loads(run(runner, "users", "show", "--client", "web", "--username", "alice", "--json").output)
    assert data["second_factors"] == {"authenticator_app": True, "passkeys": [], "recovery_codes_left": 10}


def test_reset_factors_removes_them_audited_as_the_operator(runner, alice):
    result = run(runner, "users", "reset-factors", "--client", "web", "--username", "alice")
    assert result.exit_code == 0 and result.output == "Removed every second factor of alice in client web.\n"
    assert not alice_has_a_factor()
    reset = events(mfa.MFA_RESET)[-1]
    assert reset.actor.startswith("cli:") and reset.detail["had_factors"] is True
    assert "second_factors:  none" in run(runner, "users", "show", "--client", "web", "--username", "alice").output

    again = run(runner, "users", "reset-factors", "--client", "web", "--username", "alice")
    assert again.exit_code == 0 and again.output == "alice in client web had no second factor.\n"


@pytest.mark.parametrize(("client_id", "username"), [("nope", "alice"), ("web", "nobody")])
def test_reset_factors_of_an_unknown_client_or_user_is_one_line(runner, alice, client_id, username):
    result = run(runner, "users", "reset-factors", "--client", client_id, "--username", username)
    one_line_error(result)
    assert alice_has_a_factor()


# --- init ------------------------------------------------------------------------------------


def test_init_on_an_empty_database_makes_the_console_optional(runner):
    assert run(runner, "init", "--admin-password", "a chosen password").exit_code == 0
    data = json.loads(run(runner, "clients", "show", client_service.CONSOLE_CLIENT_ID, "--json").output)
    assert data["mfa_policy"] == "optional"
    # Running it again leaves an admin's choice alone.
    client_service.update_client(client_service.CONSOLE_CLIENT_ID, mfa_policy="required")
    assert run(runner, "init").exit_code == 0
    assert settings(client_service.CONSOLE_CLIENT_ID)["mfa_policy"] == "required"
