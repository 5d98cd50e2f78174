"""`flask` commands: init, purge, clients, roles, users, keys, idps; one module per group."""

from flask import Flask

from app.cli.clients import clients_cli
from app.cli.idps import idps_cli
from app.cli.keys import keys_cli
from app.cli.maintenance import init_command, purge_command
from app.cli.roles import roles_cli
from app.cli.users import users_cli


def register(app: Flask) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(purge_command)
    for group in (clients_cli, roles_cli, users_cli, keys_cli, idps_cli):
        app.cli.add_command(group)
