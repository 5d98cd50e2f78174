"""`flask` commands: init, clients, roles, users, keys, idps."""

import functools
import json
import secrets
import sys

import click
from flask import current_app
from flask.cli import AppGroup

from app.services import NotFound, ServiceError, ValidationError
from app.services import clients as client_service
from app.services import idps as idp_service
from app.services import keys as key_service
from app.services import roles as role_service
from app.services import users as user_service
from app.services.clients import CONSOLE_ADMIN_ROLE, CONSOLE_CLIENT_ID

CONSOLE_ADMIN_USERNAME = "admin"


def fail(message: str):
    """Print one line and exit 2, the code for bad input."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def service_errors(func):
    """Turn a service error into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (ValidationError, NotFound, ServiceError) as exc:
            fail(str(exc))

    return wrapper


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


# --- init --------------------------------------------------------------------------------


@click.command("init")
@click.option("--admin-password", help="Password for the first console admin (else generated).")
@service_errors
def init_command(admin_password):
    """Migrate the database, create signing keys and the console admin (idempotent)."""
    from flask_migrate import upgrade

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


# --- clients -----------------------------------------------------------------------------

clients_cli = AppGroup("clients", help="Register and manage OAuth clients.")


def _jwks_value(value):
    if value and value.startswith("@"):
        with open(value[1:]) as fh:
            return fh.read()
    return value


@clients_cli.command("create")
@click.option("--client-id", required=True, help="Slug the application identifies itself with.")
@click.option("--name", required=True)
@click.option("--description")
@click.option("--grant-type", "grant_types", multiple=True, type=click.Choice(client_service.GRANT_TYPES))
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True)
@click.option("--scope", "scopes", multiple=True, help="Space-separated; may be repeated.")
@click.option("--auth-method", "auth_methods", multiple=True, type=click.Choice(client_service.AUTH_METHODS))
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE required).")
@click.option("--token-format", type=click.Choice(client_service.TOKEN_FORMATS))
@click.option("--signing-alg", type=click.Choice(client_service.SIGNING_ALGS))
@click.option("--require-pkce/--no-require-pkce", default=None)
@click.option("--require-consent/--no-require-consent", default=None)
@click.option("--access-token-lifetime", type=int, help="Seconds (60 to 86400).")
@click.option("--refresh-token-lifetime", type=int, help="Seconds (300 to 7776000).")
@click.option("--jwks", help="Public JWK Set for private_key_jwt (JSON, or @file).")
@json_option
@service_errors
def clients_create(public, auth_methods, as_json, jwks, **options):
    """Register a client; its secret is printed once."""
    if public and auth_methods and list(auth_methods) != ["none"]:
        fail("--public cannot be combined with --auth-method other than none")
    fields = {k: v for k, v in options.items() if v not in (None, ())}
    if public:
        fields["token_endpoint_auth_methods"] = ["none"]
    elif auth_methods:
        fields["token_endpoint_auth_methods"] = list(auth_methods)
    if jwks:
        fields["jwks"] = _jwks_value(jwks)
    for name in ("grant_types", "redirect_uris", "post_logout_redirect_uris"):
        if name in fields:
            fields[name] = list(fields[name])
    if "scopes" in fields:
        fields["scopes"] = " ".join(fields["scopes"])
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


@clients_cli.command("list")
@click.option("--search")
@json_option
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
    for key, value in data.items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        click.echo(f"{key + ':':28} {value}")


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


# --- roles -------------------------------------------------------------------------------

roles_cli = AppGroup("roles", help="Manage the roles of a client.")
client_option = click.option("--client", "client_id", required=True, help="The client's client_id.")


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


# --- users -------------------------------------------------------------------------------

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
    """Show one user."""
    data = user_service.to_dict(user_service.get_user(client_service.get_client(client_id), username))
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        click.echo(f"{key + ':':16} {value}")


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


# --- keys --------------------------------------------------------------------------------

keys_cli = AppGroup("keys", help="Signing keys.")


@keys_cli.command("list")
@json_option
def keys_list(as_json):
    """List signing keys with their state (next, active, retired, expired)."""
    rows = [key_service.to_dict(k) for k in key_service.list_keys()]
    if as_json:
        emit_json(rows)
        return
    table(
        [[r["kid"], r["alg"], r["state"], r["activates_at"][:19], (r["retired_at"] or "-")[:19]] for r in rows],
        ["KID", "ALG", "STATE", "ACTIVATES_AT", "RETIRED_AT"],
    )


@keys_cli.command("rotate")
@click.option("--alg", type=click.Choice(client_service.SIGNING_ALGS), help="Only this algorithm.")
@click.option("--now", "immediately", is_flag=True, help="Sign with the new key at once (emergency).")
@json_option
@service_errors
def keys_rotate(alg, immediately, as_json):
    """Publish new signing keys; they sign once JWKS caches have seen them."""
    made = key_service.rotate(alg, immediately)
    if as_json:
        emit_json([key_service.to_dict(k) for k in made])
        return
    for key in made:
        click.echo(f"New {key.alg} key {key.kid}: signs from {key.activates_at:%Y-%m-%d %H:%M:%S} UTC.")


# --- identity providers ------------------------------------------------------------------

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
@click.option("--type", "kind", required=True, type=click.Choice(idp_service.KINDS))
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
    for key, value in data.items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        click.echo(f"{key + ':':22} {value}")


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


@click.command("purge")
def purge_command():
    """Delete expired codes, tokens, sessions and deny-list entries (run it daily from cron)."""
    from app.services import tokens as token_service

    counts = token_service.purge_expired()
    click.echo("Purged " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items()) + ".")


def register(app) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(purge_command)
    for group in (clients_cli, roles_cli, users_cli, keys_cli, idps_cli):
        app.cli.add_command(group)
