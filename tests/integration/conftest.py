"""A live AuthGate over HTTP, and a tenant set up in it, for protocol tests."""

import pytest
from joserfc.jwk import ECKey

from tests.helpers import LiveServer
from tests.integration.helpers import LOGOUT_URI, PASSWORD, REDIRECT_URI, SCOPE, Tenant, set_up_console, sign_in


@pytest.fixture
def live(app):
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def shop_admin(app, runner, client, make_client):
    """The test client signed in to the console as its admin, with one client `shop` to administer."""
    set_up_console(app, runner)
    make_client(client_id="shop", name="Shop")
    sign_in(client)
    return client


@pytest.fixture
def make_tenant(live, make_client, make_role, make_user):
    """Create a client with roles and a user holding some; return what a relying party needs."""

    def factory(client_id="web", roles=("ROLE_ADMIN", "ROLE_VIEWER"), user_roles=None, username="alice", **fields):
        private_key = None
        if fields.get("token_endpoint_auth_methods") == ["private_key_jwt"]:
            private_key = ECKey.generate_key("P-256", auto_kid=True)
            fields["jwks"] = {"keys": [private_key.as_dict(private=False)]}
        fields.setdefault("scopes", SCOPE)
        fields.setdefault("grant_types", ["authorization_code", "refresh_token"])
        fields.setdefault("redirect_uris", [REDIRECT_URI])
        fields.setdefault("post_logout_redirect_uris", [LOGOUT_URI])
        _, secret = make_client(client_id=client_id, name=f"{client_id.title()} App", **fields)
        for role in roles:
            make_role(client_id, role)
        user = make_user(
            client_id, username, password=PASSWORD, first_name="Alice", last_name="Liddell",
            email_verified=True, roles=list(roles if user_roles is None else user_roles),
        )  # fmt: skip
        return Tenant(live.url, client_id, secret, user, private_key)

    return factory


# --- social login: fake Google and GitHub as real HTTP servers ------------------------------


@pytest.fixture
def social_tenant(app, make_tenant, fake_google, fake_github):
    """A client with roles, the user alice (password and verified email), and Google and GitHub providers.

    The providers point at the fakes; provider options are passed per provider, e.g.
    `social_tenant(google={"link_verified_email": True})`, or `None` to leave one out.
    """
    from app.services import idps
    from tests.social_fakes import UPSTREAM_CLIENT_ID, UPSTREAM_SECRET

    def factory(client_id="web", google=(), github=(), **tenant_fields):
        tenant = make_tenant(client_id=client_id, **tenant_fields)
        credentials = {"upstream_client_id": UPSTREAM_CLIENT_ID, "client_secret": UPSTREAM_SECRET}
        if google is not None:
            idps.create_provider(client_id, "google", issuer=fake_google.url, **credentials, **dict(google))
        if github is not None:
            idps.create_provider(
                client_id, "github", web_url=fake_github.url, api_url=fake_github.api_url, **credentials, **dict(github)
            )
        return tenant

    return factory


@pytest.fixture
def fakes(fake_google, fake_github):
    return (fake_google, fake_github)
