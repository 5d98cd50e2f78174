"""`flask users`: the users of a client."""

import click
from flask.cli import AppGroup

from app.cli.common import client_option, emit_json, fail, fields_out, json_option, service_errors, table
from app.services import clients as client_service
from app.services import committed, guard, mfa
from app.services import sessions as session_service
from app.services import users as user_service

users_cli = AppGroup("users", help="Manage the users of a client.")
username_option = click.option("--username", required=True)


@users_cli.command("create")
@client_option
@username_option
@click.option("--email")
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.option("--password", help="Prompted for when omitted (unless --no-password).")
@click.option("--no-password", is_flag=True, help="Social login only.")
@click.option("--role", "roles", multiple=True, help="Role name of the same client; may be repeated.")
@click.option("--email-verified", is_flag=True)
@click.option("--disabled", is_flag=True)
@json_option
@service_errors
def users_create(client_id, username, password, no_password, roles, disabled, as_json, **fields):
    """Register a user under a client."""
    if password and no_password:
        fail("give --password or --no-password, not both")
    if password is None and not no_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = user_service.create_user(client_id, username, password=password, roles=roles, enabled=not disabled, **fields)
    if as_json:
        emit_json(user_service.to_dict(user))
    else:
        click.echo(f"Created user {user.username} in client {client_id} (sub {user.sub}).")


@users_cli.command("list")
@client_option
@click.option("--search")
@json_option
@service_errors
def users_list(client_id, search, as_json):
    """List a client's users."""
    page = user_service.list_users(client_service.get_client(client_id), search, per_page=100_000)
    if as_json:
        emit_json([user_service.to_dict(u) for u in page.items])
        return
    table(
        [
            [
                u.username,
                u.email or "-",
                "yes" if u.enabled else "no",
                " ".join(r.name for r in u.roles),
                u.sub,
            ]
            for u in page.items
        ],
        ["USERNAME", "EMAIL", "ENABLED", "ROLES", "SUB"],
    )


@users_cli.command("show")
@client_option
@username_option
@json_option
@service_errors
def users_show(client_id, username, as_json):
    """Show one user, with their second factors."""
    user = user_service.get_user(client_service.get_client(client_id), username)
    data = user_service.to_dict(user)
    factors = mfa.factors_of(user)
    if as_json:
        data["second_factors"] = {
            "authenticator_app": factors.totp is not None,
            "passkeys": [passkey.name for passkey in factors.passkeys],
            "recovery_codes_left": factors.recovery_left,
        }
        emit_json(data)
        return
    data["second_factors"] = factors_text(factors)
    fields_out(data, 16)


def factors_text(factors: mfa.Factors) -> str:
    """One line: "authenticator app, 2 passkeys, 9 recovery codes left", or "none"."""
    parts = ["authenticator app"] if factors.totp else []
    if factors.passkeys:
        parts.append(f"{len(factors.passkeys)} passkey{'s' if len(factors.passkeys) != 1 else ''}")
    if factors.any:
        parts.append(f"{factors.recovery_left} recovery code{'s' if factors.recovery_left != 1 else ''} left")
    return ", ".join(parts) or "none"


@users_cli.command("set-password")
@client_option
@username_option
@click.option("--password", help="Prompted for when omitted.")
@service_errors
def users_set_password(client_id, username, password):
    """Set a user's password."""
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    user_service.set_password(client_id, username, password)
    click.echo(f"Password of {username} in client {client_id} changed.")


@users_cli.command("disable")
@client_option
@username_option
@service_errors
def users_disable(client_id, username):
    """Stop a user from signing in."""
    user_service.set_enabled(client_id, username, False)
    click.echo(f"Disabled {username} in client {client_id}.")


@users_cli.command("enable")
@client_option
@username_option
@service_errors
def users_enable(client_id, username):
    """Let a disabled user sign in again."""
    user_service.set_enabled(client_id, username, True)
    click.echo(f"Enabled {username} in client {client_id}.")


@users_cli.command("assign-role")
@client_option
@username_option
@click.option("--role", "role_name", required=True)
@service_errors
def users_assign_role(client_id, username, role_name):
    """Give a user a role of the same client."""
    user_service.assign_role(client_id, username, role_name)
    click.echo(f"{username} in client {client_id} now holds {role_name}.")


@users_cli.command("remove-role")
@client_option
@username_option
@click.option("--role", "role_name", required=True)
@service_errors
def users_remove_role(client_id, username, role_name):
    """Take a role away from a user."""
    user_service.remove_role(client_id, username, role_name)
    click.echo(f"{username} in client {client_id} no longer holds {role_name}.")


@users_cli.command("sessions")
@client_option
@username_option
@json_option
@service_errors
def users_sessions(client_id, username, as_json):
    """List a user's live sign-in sessions, offline grants and consents."""
    client = client_service.get_client(client_id)
    data = session_service.overview(client, user_service.get_user(client, username))
    if as_json:
        emit_json(data)
        return
    click.echo("Sessions:")
    table(
        [[s["id"][:8], s["started_at"][:19], s["last_seen_at"][:19], s["ip"] or "-", s["user_agent"] or "-"]
         for s in data["sessions"]],
        ["SESSION", "STARTED", "LAST_SEEN", "IP", "USER_AGENT"],
    )  # fmt: skip
    click.echo("Offline grants:")
    table(
        [[g["family"][:8], g["scope"], g["last_used_at"][:19], g["ends_at"][:19]] for g in data["offline_grants"]],
        ["FAMILY", "SCOPE", "LAST_USED", "ENDS"],
    )
    click.echo("Consents:")
    table([[" ".join(c["scopes"]), c["granted_at"][:19]] for c in data["consents"]], ["SCOPES", "GRANTED"])


@users_cli.command("sign-out")
@client_option
@username_option
@service_errors
def users_sign_out(client_id, username):
    """End all of a user's sessions and revoke all their tokens, offline ones too."""
    ended = session_service.sign_out_everywhere(client_id, username)
    click.echo(
        f"Signed {username} in client {client_id} out everywhere: "
        f"{ended['sessions']} sessions ended, {ended['families']} refresh-token families revoked."
    )


@users_cli.command("reset-factors")
@client_option
@username_option
@service_errors
def users_reset_factors(client_id, username):
    """Remove a user's authenticator app, passkeys and recovery codes (one who lost them all); audited."""
    client = client_service.get_client(client_id)
    user = user_service.get_user(client, username)
    if mfa.reset_factors(client, user):
        click.echo(f"Removed every second factor of {user.username} in client {client_id}.")
    else:
        click.echo(f"{user.username} in client {client_id} had no second factor.")


@users_cli.command("unlock")
@client_option
@username_option
@service_errors
@committed
def users_unlock(client_id, username):
    """End a user's sign-in lock (too many failed sign-ins) before its time, and forget the failures."""
    client = client_service.get_client(client_id)
    user = user_service.get_user(client, username)
    if guard.unlock(client, user):
        click.echo(f"Unlocked {user.username} in client {client_id}: they can sign in again.")
    else:
        click.echo(f"{user.username} in client {client_id} was not locked.")
