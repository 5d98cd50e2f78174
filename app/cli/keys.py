"""`flask keys`: signing keys."""

import click
from flask.cli import AppGroup

from app import capabilities
from app.cli.common import emit_json, json_option, service_errors, table
from app.services import keys as key_service

keys_cli = AppGroup("keys", help="Signing keys.")


@keys_cli.command("list")
@json_option
@service_errors
def keys_list(as_json):
    """List signing keys with their state (next, active, retired, expired, revoked)."""
    rows = [key_service.to_dict(k) for k in key_service.list_keys()]
    if as_json:
        emit_json(rows)
        return
    table(
        [[r["kid"], r["alg"], r["state"], r["activates_at"][:19], (r["retired_at"] or "-")[:19]] for r in rows],
        ["KID", "ALG", "STATE", "ACTIVATES_AT", "RETIRED_AT"],
    )


@keys_cli.command("rotate")
@click.option("--alg", type=click.Choice(capabilities.SIGNING_ALGS), help="Only this algorithm.")
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


# A kid is an RFC 7638 thumbprint in base64url, so one in 32 begins with "-": take an unknown
# "option" as the kid rather than making the admin know to write `--` first.
@keys_cli.command("revoke", context_settings={"ignore_unknown_options": True})
@click.argument("kid")
@click.option(
    "--replace",
    is_flag=True,
    help="Needed to revoke the key that signs now: a new key of its algorithm signs at once.",
)
@json_option
@service_errors
def keys_revoke(kid, replace, as_json):
    """Take a key out of the JWKS and out of verification at once: every token it signed stops working."""
    key, replacement = key_service.revoke(kid, replace=replace)
    if as_json:
        made = key_service.to_dict(replacement) if replacement is not None else None
        emit_json({"revoked": key_service.to_dict(key), "replacement": made})
        return
    click.echo(f"Revoked {key.alg} key {key.kid}: every worker stops trusting it within about a second.")
    if replacement is not None:
        click.echo(f"New {replacement.alg} key {replacement.kid} signs from now on.")
