"""`flask idps ...`: identity providers from the command line, through Flask's CLI runner."""

import json

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import IdentityProvider, IdentityProviderRole, LinkedIdentity
from app.services import identities, idps
from app.services.clients import get_client


@pytest.fixture
def web(make_client, make_role):
    client, _ = make_client(client_id="web")
    make_role("web", "ROLE_VIEWER")
    make_client(client_id="shop")
    make_role("shop", "ROLE_SHOP")
    return client


def run(runner, *args, input=None):
    return runner.invoke(args=list(args), input=input)


def counts() -> tuple[int, int, int]:
    db.session.expire_all()
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (IdentityProvider, IdentityProviderRole, LinkedIdentity)
    )


CREDENTIALS = ("--client-id", "upstream-id", "--client-secret", "upstream-secret")


def test_create_google_with_defaults(runner, web):
    result = run(runner, "idps", "create", "--client", "web", "--type", "google", *CREDENTIALS, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data == {
        "slug": "google",
        "type": "google",
        "name": "Google",
        "enabled": True,
        "upstream_client_id": "upstream-id",
        "scopes": ["openid", "email", "profile"],
        "auto_create": True,
        "default_roles": [],
        "link_verified_email": False,
        "callback_url": "http://localhost:5000/login/google/callback",
        "created_at": data["created_at"],
        "issuer": "https://accounts.google.com",
    }
    assert "upstream-secret" not in result.output
    provider = idps.get_provider(web, "google")
    assert "upstream-secret" not in provider.client_secret_encrypted
    assert idps.client_secret_of(provider) == "upstream-secret"


def test_create_github_enterprise_and_oidc_then_list_show(runner, web):
    github = run(
        runner, "idps", "create", "--client", "web", "--type", "github", *CREDENTIALS,
        "--web-url", "https://ghe.example.com", "--api-url", "https://ghe.example.com/api/v3",
        "--default-role", "ROLE_VIEWER", "--no-auto-create",
    )  # fmt: skip
    assert github.exit_code == 0, github.output
    assert "Register this redirect URI at the provider: http://localhost:5000/login/github/callback" in github.output
    oidc = run(
        runner, "idps", "create", "--client", "web", "--type", "oidc", "--slug", "corp", "--name", "Corp SSO",
        "--issuer", "https://sso.example.com/realms/corp/.well-known/openid-configuration", *CREDENTIALS,
        "--scope", "openid email", "--scope", "groups", "--link-verified-email",
    )  # fmt: skip
    assert oidc.exit_code == 0, oidc.output

    listed = json.loads(run(runner, "idps", "list", "--client", "web", "--json").output)
    assert [(p["slug"], p["type"], p["linked_identities"]) for p in listed] == [
        ("github", "github", 0),
        ("corp", "oidc", 0),
    ]
    assert (
        listed[0]["web_url"] == "https://ghe.example.com" and listed[0]["api_url"] == "https://ghe.example.com/api/v3"
    )
    assert listed[0]["default_roles"] == ["ROLE_VIEWER"] and listed[0]["auto_create"] is False
    assert listed[1]["issuer"] == "https://sso.example.com/realms/corp"
    assert listed[1]["scopes"] == ["openid", "email", "groups"] and listed[1]["link_verified_email"] is True

    table = run(runner, "idps", "list", "--client", "web")
    assert table.exit_code == 0 and "SLUG" in table.output and "Corp SSO" in table.output
    shown = run(runner, "idps", "show", "--client", "web", "--slug", "corp")
    assert shown.exit_code == 0 and "https://sso.example.com/realms/corp" in shown.output
    assert "upstream-secret" not in shown.output + table.output
    # The other client has none of them.
    assert json.loads(run(runner, "idps", "list", "--client", "shop", "--json").output) == []


def test_secret_is_prompted_when_omitted(runner, web):
    result = run(runner, "idps", "create", "--client", "web", "--type", "google", "--client-id", "x", input="s3cret\n")
    assert result.exit_code == 0, result.output
    assert idps.client_secret_of(idps.get_provider(web, "google")) == "s3cret"


def test_disable_enable_update_delete(runner, web):
    run(runner, "idps", "create", "--client", "web", "--type", "google", *CREDENTIALS)
    assert run(runner, "idps", "disable", "--client", "web", "--slug", "google").exit_code == 0
    assert idps.enabled_providers(web) == []
    assert run(runner, "idps", "enable", "--client", "web", "--slug", "google").exit_code == 0
    assert [p.slug for p in idps.enabled_providers(web)] == ["google"]

    updated = run(
        runner, "idps", "update", "--client", "web", "--slug", "google", "--client-secret", "rotated",
        "--default-role", "ROLE_VIEWER", "--link-verified-email", "--json",
    )  # fmt: skip
    assert updated.exit_code == 0, updated.output
    assert json.loads(updated.output)["default_roles"] == ["ROLE_VIEWER"]
    db.session.expire_all()
    provider = idps.get_provider(web, "google")
    assert idps.client_secret_of(provider) == "rotated" and provider.link_verified_email
    cleared = run(runner, "idps", "update", "--client", "web", "--slug", "google", "--no-default-roles")
    assert cleared.exit_code == 0 and counts() == (1, 0, 0)

    deleted = run(runner, "idps", "delete", "--client", "web", "--slug", "google", "--yes")
    assert deleted.exit_code == 0 and "Deleted identity provider google" in deleted.output
    assert counts() == (0, 0, 0)


def test_delete_asks_when_accounts_are_linked(runner, web, make_user):
    provider = idps.create_provider("web", "github", upstream_client_id="x", client_secret="y")
    user = make_user("web", "alice")
    identities.add_identity(provider, user, "4242", "alice@example.com")
    db.session.commit()
    refused = run(runner, "idps", "delete", "--client", "web", "--slug", "github", input="n\n")
    assert refused.exit_code == 1 and "1 accounts are linked" in refused.output
    assert counts() == (1, 0, 1)
    assert run(runner, "idps", "delete", "--client", "web", "--slug", "github", "--yes").exit_code == 0
    assert counts() == (0, 0, 0)


BAD_INPUT = [
    (["--client", "nope", "--type", "google", *CREDENTIALS], "no client 'nope'"),
    (["--client", "web", "--type", "oidc", "--issuer", "https://sso.example.com", *CREDENTIALS], "slug: is required"),
    (["--client", "web", "--type", "oidc", "--slug", "corp", "--name", "Corp", *CREDENTIALS], "issuer: is required"),
    (["--client", "web", "--type", "oidc", "--slug", "corp", "--issuer", "https://sso.example.com", *CREDENTIALS],
     "name: is required"),
    (["--client", "web", "--type", "google", "--issuer", "http://sso.example.com", *CREDENTIALS], "use https"),
    (["--client", "web", "--type", "google", "--issuer", "sso.example.com", *CREDENTIALS], "absolute https URL"),
    (["--client", "web", "--type", "google", "--issuer", "https://sso.example.com?x=1", *CREDENTIALS], "query"),
    (["--client", "web", "--type", "github", "--issuer", "https://sso.example.com", *CREDENTIALS],
     "issuer: does not apply to a github provider"),
    (["--client", "web", "--type", "google", "--web-url", "https://ghe.example.com", *CREDENTIALS],
     "web_url: does not apply"),
    (["--client", "web", "--type", "google", "--scope", "email profile", *CREDENTIALS], "must include openid"),
    (["--client", "web", "--type", "github", "--scope", "read:user", *CREDENTIALS], "must include user:email"),
    (["--client", "web", "--type", "google", "--slug", "Google!", *CREDENTIALS], "slug: must be 1 to 64"),
    (["--client", "web", "--type", "google", "--default-role", "ROLE_SHOP", *CREDENTIALS], "has no role 'ROLE_SHOP'"),
    (["--client", "web", "--type", "google", "--client-secret", "y"], "give --client-id"),
    (["--client", "web", "--type", "google", "--client-id", "a b", "--client-secret", "y"], "without spaces"),
    (["--client", "web", "--type", "google", "--client-id", "x", "--client-secret", " "], "client_secret: is required"),
    (["--client", "web", "--type", "facebook", *CREDENTIALS], "'facebook' is not one of"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(runner, web, args, message):
    result = run(runner, "idps", "create", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    if "is not one of" not in message:  # click's own usage errors print the usage too
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert counts() == (0, 0, 0)


def test_slug_is_unique_per_client_but_not_across_clients(runner, web):
    assert run(runner, "idps", "create", "--client", "web", "--type", "google", *CREDENTIALS).exit_code == 0
    again = run(runner, "idps", "create", "--client", "web", "--type", "google", *CREDENTIALS)
    assert again.exit_code == 2 and "already has an identity provider 'google'" in again.output
    assert counts() == (1, 0, 0)
    other = run(runner, "idps", "create", "--client", "shop", "--type", "google", *CREDENTIALS)
    assert other.exit_code == 0 and counts() == (2, 0, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slug", "nope"], "has no identity provider 'nope'"),
        (["--slug", "google", "--issuer", "https://evil.example.com?x"], "query"),
        (["--slug", "google", "--api-url", "https://api.example.com"], "does not apply to a google provider"),
        (["--slug", "google", "--default-role", "ROLE_VIEWER", "--no-default-roles"], "not both"),
    ],
)
def test_bad_update_exits_2_and_changes_nothing(runner, web, args, message):
    run(runner, "idps", "create", "--client", "web", "--type", "google", *CREDENTIALS)
    result = run(runner, "idps", "update", "--client", "web", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    db.session.expire_all()
    assert idps.get_provider(get_client("web"), "google").issuer == "https://accounts.google.com"


@pytest.mark.parametrize("command", ["disable", "enable", "delete", "show"])
def test_commands_on_an_unknown_provider_exit_2(runner, web, command):
    result = run(runner, "idps", command, "--client", "web", "--slug", "nope")
    assert result.exit_code == 2 and "has no identity provider 'nope'" in result.output
