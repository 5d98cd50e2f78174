"""`flask idps`: the identity providers (Google, GitHub, OpenID Connect) of a client."""

import click
from flask.cli import AppGroup

from app import capabilities
from app.cli.common import client_option, emit_json, fail, fields_out, json_option, service_errors, table
from app.services import clients as client_service
from app.services import idps as idp_service

idps_cli = AppGroup("idps", help="Identity providers (Google, GitHub, OpenID Connect) of a client.")
slug_option = click.option("--slug", required=True, help="The provider's slug (google, github, or its own).")


def _provider_options(func):
    """Options shared by `idps create` and `idps update`."""
    options = [
        click.option("--name", help='Shown on the button: "Continue with <name>".'),
        click.option("--issuer", help="OpenID Connect issuer (or its discovery URL); Google's is the default."),
        click.option("--web-url", help="GitHub's web address (default https://github.com; GitHub Enterprise: yours)."),
        click.option("--api-url", help="GitHub's API address (default https://api.github.com)."),
        click.option("--client-id", "upstream_client_id", help="This server's client id at the provider."),
        click.option("--client-secret", help="This server's client secret at the provider (prompted when omitted)."),
        click.option("--scope", "scopes", multiple=True, help="Space-separated; may be repeated."),
        click.option("--default-role", "default_roles", multiple=True, help="Role given to created users."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _scopes(values) -> list[str] | None:
    return " ".join(values).split() or None


@idps_cli.command("create")
@client_option
@click.option("--type", "kind", required=True, type=click.Choice(capabilities.IDP_KINDS))
@click.option("--slug", help="Names it in URLs and the idp claim; google and github by default.")
@_provider_options
@click.option("--auto-create/--no-auto-create", default=True, help="Create users at their first sign-in.")
@click.option(
    "--link-verified-email", is_flag=True, help="Link to the user with the same email when both sides verified it."
)
@click.option("--disabled", is_flag=True, help="Create it switched off.")
@json_option
@service_errors
def idps_create(client_id, kind, scopes, client_secret, disabled, as_json, **fields):
    """Let a client's users sign in with Google, GitHub or an OpenID Connect provider."""
    if not fields["upstream_client_id"]:
        fail("upstream_client_id: give --client-id, the client id this server is registered with at the provider")
    if client_secret is None:
        client_secret = click.prompt("Client secret", hide_input=True)
    provider = idp_service.create_provider(
        client_id, kind, scopes=_scopes(scopes), client_secret=client_secret, enabled=not disabled, **fields
    )
    if as_json:
        emit_json(idp_service.to_dict(provider))
        return
    click.echo(f"Created identity provider {provider.slug} ({provider.kind}) in client {client_id}.")
    click.echo(f"Register this redirect URI at the provider: {idp_service.callback_url(provider)}")


@idps_cli.command("update")
@client_option
@slug_option
@_provider_options
@click.option("--auto-create/--no-auto-create", default=None)
@click.option("--link-verified-email/--no-link-verified-email", default=None)
@click.option("--no-default-roles", is_flag=True, help="Give created users no roles.")
@json_option
@service_errors
def idps_update(client_id, slug, scopes, default_roles, no_default_roles, as_json, **fields):
    """Change a provider's settings (its type and slug stay)."""
    if default_roles and no_default_roles:
        fail("give --default-role or --no-default-roles, not both")
    roles = [] if no_default_roles else list(default_roles) or None
    provider = idp_service.update_provider(client_id, slug, scopes=_scopes(scopes), default_roles=roles, **fields)
    if as_json:
        emit_json(idp_service.to_dict(provider))
    else:
        click.echo(f"Updated identity provider {slug} of client {client_id}.")


@idps_cli.command("list")
@client_option
@json_option
@service_errors
def idps_list(client_id, as_json):
    """List a client's identity providers."""
    client = client_service.get_client(client_id)
    providers = idp_service.list_providers(client)
    counts = idp_service.identity_counts(client)
    if as_json:
        emit_json([idp_service.to_dict(p, counts.get(p.id, 0)) for p in providers])
        return
    table(
        [
            [
                p.slug,
                p.kind,
                p.name,
                "yes" if p.enabled else "no",
                "yes" if p.auto_create else "no",
                "yes" if p.link_verified_email else "no",
                " ".join(r.name for r in p.default_roles) or "-",
                counts.get(p.id, 0),
            ]
            for p in providers
        ],
        ["SLUG", "TYPE", "NAME", "ENABLED", "AUTO_CREATE", "LINK_EMAIL", "DEFAULT_ROLES", "LINKED"],
    )


@idps_cli.command("show")
@client_option
@slug_option
@json_option
@service_errors
def idps_show(client_id, slug, as_json):
    """Show one identity provider (never its client secret)."""
    client = client_service.get_client(client_id)
    provider = idp_service.get_provider(client, slug)
    data = idp_service.to_dict(provider, idp_service.identity_counts(client).get(provider.id, 0))
    if as_json:
        emit_json(data)
        return
    fields_out(data, 22)


@idps_cli.command("disable")
@client_option
@slug_option
@service_errors
def idps_disable(client_id, slug):
    """Stop offering a provider; its linked identities stay."""
    idp_service.set_enabled(client_id, slug, False)
    click.echo(f"Disabled identity provider {slug} of client {client_id}.")


@idps_cli.command("enable")
@client_option
@slug_option
@service_errors
def idps_enable(client_id, slug):
    """Offer a disabled provider again."""
    idp_service.set_enabled(client_id, slug, True)
    click.echo(f"Enabled identity provider {slug} of client {client_id}.")


@idps_cli.command("delete")
@client_option
@slug_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@service_errors
def idps_delete(client_id, slug, yes):
    """Delete a provider and unlink every account linked through it (the users stay)."""
    client = client_service.get_client(client_id)
    provider = idp_service.get_provider(client, slug)
    linked = idp_service.identity_counts(client).get(provider.id, 0)
    if linked and not yes:
        click.confirm(f"{linked} accounts are linked through {slug}; they will be unlinked. Delete it?", abort=True)
    idp_service.delete_provider(client_id, slug)
    click.echo(f"Deleted identity provider {slug} of client {client_id} ({linked} linked accounts unlinked).")
