"""`flask init` and `flask purge`: set the server up, clear what has expired."""

import secrets

import click
from flask import current_app

from app.cli.common import service_errors
from app.health import wait_for_database
from app.services import clients as client_service
from app.services import keys as key_service
from app.services import roles as role_service
from app.services import users as user_service
from app.services.clients import CONSOLE_ADMIN_ROLE, CONSOLE_CLIENT_ID

CONSOLE_ADMIN_USERNAME = "admin"


@click.command("init")
@click.option("--admin-password", help="Password for the first console admin (else generated).")
@service_errors
def init_command(admin_password):
    """Migrate the database, create signing keys and the console admin (idempotent)."""
    from flask_migrate import upgrade

    wait_for_database(current_app.config["AUTHGATE_DB_WAIT_SECONDS"])
    upgrade()
    made = key_service.ensure_keys()
    issuer = current_app.config["AUTHGATE_ISSUER"]
    console = {
        "redirect_uris": [f"{issuer}/admin/callback"],
        "post_logout_redirect_uris": [f"{issuer}/admin/"],
    }
    if client_service.find_client(CONSOLE_CLIENT_ID) is None:
        client_service.create_client(
            client_id=CONSOLE_CLIENT_ID,
            name="AuthGate console",
            description="The admin console; its users holding ROLE_AUTHGATE_ADMIN administer AuthGate.",
            token_endpoint_auth_methods=["none"],
            grant_types=["authorization_code"],
            scopes=["openid", "profile", "email", "roles"],
            # Admins may add a second factor (the dashboard reminds them); nobody is made to.
            mfa_policy="optional",
            **console,
        )
    else:
        # Follow a changed AUTHGATE_ISSUER.
        client_service.update_client(CONSOLE_CLIENT_ID, **console)
    client = client_service.get_client(CONSOLE_CLIENT_ID)
    role = role_service.find_role(client, CONSOLE_ADMIN_ROLE)
    if role is None:
        role = role_service.create_role(CONSOLE_CLIENT_ID, CONSOLE_ADMIN_ROLE, "Administers AuthGate in the console")
    password = None
    if not role_service.holders(role):
        password = admin_password or current_app.config["AUTHGATE_ADMIN_PASSWORD"] or secrets.token_urlsafe(12)
        user_service.create_user(
            CONSOLE_CLIENT_ID,
            CONSOLE_ADMIN_USERNAME,
            first_name="Console",
            last_name="Admin",
            password=password,
            roles=[CONSOLE_ADMIN_ROLE],
        )
    click.echo("AuthGate is initialised.")
    if made:
        click.echo(f"  signing keys created: {', '.join(k.alg for k in made)}")
    if password is not None:
        generated = not (admin_password or current_app.config["AUTHGATE_ADMIN_PASSWORD"])
        click.echo(f"  console admin: {CONSOLE_ADMIN_USERNAME}")
        if generated:
            click.echo(f"  password: {password}   (shown once; store it now)")
    click.echo(f"  console: {issuer}/admin/")


@click.command("purge")
@service_errors
def purge_command():
    """Delete expired codes, tokens, sessions, deny-list entries and old audit events.

    The server does this itself every AUTHGATE_MAINTENANCE_SECONDS; with that set to 0, run this daily from cron.
    """
    from app.services import maintenance

    counts = maintenance.purge_all()
    click.echo("Purged " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items()) + ".")
