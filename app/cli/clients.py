"""`flask clients`: register and manage OAuth clients."""

import click
from flask.cli import AppGroup

from app import capabilities
from app.cli.common import emit_json, fail, fields_out, json_option, service_errors, table
from app.services import clients as client_service
from app.services.mfa import POLICY_TEXT

clients_cli = AppGroup("clients", help="Register and manage OAuth clients.")


def _jwks_value(value):
    if value and value.startswith("@"):
        with open(value[1:]) as fh:
            return fh.read()
    return value


def setting_options(func):
    """The options for a client's settings that `clients create` and `clients update` share."""
    options = [
        click.option("--description"),
        click.option("--grant-type", "grant_types", multiple=True, type=click.Choice(capabilities.GRANT_TYPES)),
        click.option(
            "--redirect-uri", "redirect_uris", multiple=True, help="May be repeated; on update, replaces them."
        ),
        click.option(
            "--post-logout-redirect-uri",
            "post_logout_redirect_uris",
            multiple=True,
            help="May be repeated; on update, replaces them.",
        ),
        click.option("--scope", "scopes", multiple=True, help="Space-separated; may be repeated."),
        click.option("--auth-method", "auth_methods", multiple=True, type=click.Choice(capabilities.AUTH_METHODS)),
        click.option("--public", is_flag=True, help="A public client (no secret; PKCE required)."),
        click.option("--token-format", type=click.Choice(capabilities.TOKEN_FORMATS)),
        click.option("--signing-alg", type=click.Choice(capabilities.SIGNING_ALGS)),
        click.option("--require-pkce/--no-require-pkce", default=None),
        click.option("--require-consent/--no-require-consent", default=None),
        click.option("--access-token-lifetime", type=int, help="Seconds (60 to 86400)."),
        click.option(
            "--refresh-token-lifetime", type=int, help="Idle timeout: seconds (300 to 7776000) each rotation lives."
        ),
        click.option(
            "--refresh-token-max-lifetime",
            type=int,
            help="Seconds (300 to 31536000) a refresh-token family lives at most.",
        ),
        click.option("--jwks", help="Public JWK Set for private_key_jwt (JSON, or @file)."),
        click.option(
            "--allow-registration/--no-allow-registration",
            default=None,
            help="Let people create their own account on the sign-in page (needs mail; default off).",
        ),
        click.option(
            "--require-verified-email/--no-require-verified-email",
            default=None,
            help="Refuse sign-in until the user's email address is verified (default off).",
        ),
        click.option(
            "--default-role",
            "default_roles",
            multiple=True,
            help="A role self-registered users get; may be repeated. On create, a missing role is created; "
            "on update, it must exist and the list replaces the defaults.",
        ),
        click.option(
            "--mfa",
            "mfa_policy",
            type=click.Choice(capabilities.MFA_POLICIES),
            help="Second factors. " + " ".join(f"{text}." for text in POLICY_TEXT.values()) + " Default off.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings_from(options: dict, public: bool, auth_methods, jwks) -> dict:
    """The service's fields from the options that were given (unset options change nothing)."""
    if public and auth_methods and list(auth_methods) != ["none"]:
        fail("--public cannot be combined with --auth-method other than none")
    fields = {k: v for k, v in options.items() if v not in (None, ())}
    if public:
        fields["token_endpoint_auth_methods"] = ["none"]
    elif auth_methods:
        fields["token_endpoint_auth_methods"] = list(auth_methods)
    if jwks:
        fields["jwks"] = _jwks_value(jwks)
    for name in ("grant_types", "redirect_uris", "post_logout_redirect_uris", "default_roles"):
        if name in fields:
            fields[name] = list(fields[name])
    if "scopes" in fields:
        fields["scopes"] = " ".join(fields["scopes"])
    return fields


@clients_cli.command("create")
@click.option("--client-id", required=True, help="Slug the application identifies itself with.")
@click.option("--name", required=True)
@setting_options
@json_option
@service_errors
def clients_create(public, auth_methods, as_json, jwks, **options):
    """Register a client; its secret is printed once."""
    fields = settings_from(options, public, auth_methods, jwks)
    client, secret = client_service.create_client(**fields)
    if as_json:
        out = {"client_id": client.client_id}
        if secret:
            out["client_secret"] = secret
        emit_json(out)
        return
    click.echo(f"Created client {client.client_id}.")
    if secret:
        click.echo(f"Client secret (shown once; store it now): {secret}")


@clients_cli.command("update")
@click.argument("client_id")
@click.option("--name")
@setting_options
@click.option("--no-default-roles", is_flag=True, help="Self-registered users get no role.")
@json_option
@service_errors
def clients_update(client_id, public, auth_methods, as_json, jwks, no_default_roles, **options):
    """Change a client's settings; only the options given change (families already issued keep their end)."""
    changes = settings_from(options, public, auth_methods, jwks)
    if no_default_roles:
        if "default_roles" in changes:
            fail("--no-default-roles cannot be combined with --default-role")
        changes["default_roles"] = []
    if not changes:
        fail("nothing to change: give at least one option")
    client, secret = client_service.update_client(client_id, **changes)
    if as_json:
        data = client_service.to_dict(client)
        if secret:
            data["client_secret"] = secret
        emit_json(data)
        return
    click.echo(f"Updated client {client.client_id}: {', '.join(sorted(changes))}.")
    if secret:
        click.echo(f"Client secret (shown once; store it now): {secret}")


@clients_cli.command("list")
@click.option("--search")
@json_option
@service_errors
def clients_list(search, as_json):
    """List clients."""
    page = client_service.list_clients(search, per_page=10_000)
    if as_json:
        emit_json([client_service.to_dict(c) for c in page.items])
        return
    table(
        [
            [c.client_id, c.name, "public" if c.is_public else "confidential", " ".join(c.grant_types)]
            for c in page.items
        ],
        ["CLIENT_ID", "NAME", "TYPE", "GRANTS"],
    )


@clients_cli.command("show")
@click.argument("client_id")
@json_option
@service_errors
def clients_show(client_id, as_json):
    """Show one client's settings (never its secret)."""
    client = client_service.get_client(client_id)
    data = client_service.to_dict(client)
    data.update(client_service.usage(client))
    if as_json:
        emit_json(data)
        return
    fields_out(data, 28)


@clients_cli.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@service_errors
def clients_delete(client_id, yes):
    """Delete a client with all its users and roles."""
    client_service.check_deletable(client_id)
    counts = client_service.usage(client_service.get_client(client_id))
    if not yes:
        click.confirm(
            f"Delete client {client_id} with its {counts['users']} users and {counts['roles']} roles?",
            abort=True,
        )
    client_service.delete_client(client_id)
    click.echo(f"Deleted client {client_id} ({counts['users']} users, {counts['roles']} roles).")


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@json_option
@service_errors
def clients_rotate_secret(client_id, as_json):
    """Replace a client's secret; the old one stops working at once."""
    secret = client_service.rotate_secret(client_id)
    if as_json:
        emit_json({"client_id": client_id, "client_secret": secret})
    else:
        click.echo(f"New client secret for {client_id} (shown once; store it now): {secret}")
