"""What every command group shares: who runs it, the one-line error and exit code 2, JSON and table output."""

import functools
import getpass
import json
import os
import sys
from typing import NoReturn

import click
import sqlalchemy as sa

from app.errors import database_unavailable, describe
from app.health import DatabaseUnreachable, database_name
from app.services import ServiceError, audit

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
client_option = click.option("--client", "client_id", required=True, help="The client's client_id.")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line and exit; 2 is the code for bad input."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def operator() -> str:
    """Who runs the command, as the audit log names them: cli:<OS user>."""
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:  # a container's user id with no name
        return f"cli:uid {os.getuid()}"


def service_errors(func):
    """Run a command's services as its operator (the audit log's actor).

    A service error becomes one line on stderr and exit code 2; an unreachable database exit code 1.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with audit.acting_as(operator()):
                return func(*args, **kwargs)
        except DatabaseUnreachable as exc:
            fail(str(exc), 1)
        except ServiceError as exc:
            fail(str(exc))
        except sa.exc.SQLAlchemyError as exc:
            if not database_unavailable(exc):
                raise
            fail(f"cannot reach the database {database_name()}: {describe(exc)}", 1)

    return wrapper


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())


def fields_out(data: dict, width: int) -> None:
    """One `key: value` line per field, lists space-separated, for `show` commands."""
    for key, value in data.items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        click.echo(f"{key + ':':{width}} {value}")
