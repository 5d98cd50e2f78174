"""`flask roles`: the roles of a client."""

import click
from flask.cli import AppGroup

from app.cli.common import client_option, emit_json, json_option, service_errors, table
from app.services import clients as client_service
from app.services import roles as role_service

roles_cli = AppGroup("roles", help="Manage the roles of a client.")


@roles_cli.command("create")
@client_option
@click.option("--name", required=True)
@click.option("--description", default="")
@json_option
@service_errors
def roles_create(client_id, name, description, as_json):
    """Define a role under a client."""
    role = role_service.create_role(client_id, name, description)
    if as_json:
        emit_json(role_service.to_dict(role))
    else:
        click.echo(f"Created role {role.name} in client {client_id}.")


@roles_cli.command("list")
@client_option
@json_option
@service_errors
def roles_list(client_id, as_json):
    """List a client's roles."""
    client = client_service.get_client(client_id)
    roles = role_service.list_roles(client)
    counts = role_service.holder_counts(client)
    if as_json:
        emit_json([{**role_service.to_dict(r), "users": counts.get(r.id, 0)} for r in roles])
        return
    table([[r.name, counts.get(r.id, 0), r.description] for r in roles], ["NAME", "USERS", "DESCRIPTION"])


@roles_cli.command("delete")
@client_option
@click.option("--name", required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@service_errors
def roles_delete(client_id, name, yes):
    """Delete a role; users who held it lose it."""
    role = role_service.get_role(client_service.get_client(client_id), name)
    had_it = [u.username for u in role_service.holders(role)]
    if had_it and not yes:
        click.confirm(f"{len(had_it)} users hold {name} ({', '.join(had_it[:10])}). Delete it?", abort=True)
    role_service.delete_role(client_id, name)
    click.echo(f"Deleted role {name} from client {client_id}.")
