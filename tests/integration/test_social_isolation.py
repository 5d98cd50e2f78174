"""The client is the tenant: an upstream account linked under one client signs nobody in under another."""

import sqlalchemy as sa

from app.extensions import db
from app.models import Client, LinkedIdentity, User
from app.services import idps
from app.services.clients import get_client
from tests.integration.helpers import PASSWORD, REDIRECT_URI, Tenant
from tests.social_fakes import (
    UPSTREAM_CLIENT_ID,
    UPSTREAM_SECRET,
    button_href,
    social_sign_in,
    start_sign_in,
    through_upstream,
)


def shop_tenant(live, make_client, fake_google, **google) -> Tenant:
    """A second client with its own Google provider, pointing at the same upstream account."""
    _, secret = make_client(
        client_id="shop", name="Shop", redirect_uris=[REDIRECT_URI],
        scopes="openid profile email roles offline_access", grant_types=["authorization_code", "refresh_token"],
    )  # fmt: skip
    idps.create_provider(
        "shop", "google", issuer=fake_google.url, upstream_client_id=UPSTREAM_CLIENT_ID,
        client_secret=UPSTREAM_SECRET, **google,
    )  # fmt: skip
    return Tenant(live.url, "shop", secret, None)


def identities() -> list[tuple[str, str, str]]:
    """(client_id, subject, username) of every linked identity."""
    db.session.expire_all()
    query = (
        sa.select(Client.client_id, LinkedIdentity.subject, User.username)
        .join(User, User.id == LinkedIdentity.user_id)
        .join(Client, Client.id == User.client_pk)
        .order_by(LinkedIdentity.id)
    )
    return [tuple(row) for row in db.session.execute(query)]


def test_the_same_upstream_account_is_a_different_user_in_another_client(
    social_tenant, live, make_client, fakes, fake_google
):
    web = social_tenant(google={"link_verified_email": True})
    shop = shop_tenant(live, make_client, fake_google)
    in_web = social_sign_in(web, "google", fakes).id_token()
    assert in_web["sub"] == web.user.sub
    # Same browser, same Google account: the web sign-in counts for nothing at shop.
    flight = social_sign_in(shop, "google", fakes)
    in_shop = flight.id_token()
    assert in_shop["aud"] == "shop" and in_shop["sub"] != web.user.sub
    assert in_shop["roles"] == []
    assert identities() == [("web", "google-1001", "alice"), ("shop", "google-1001", "alice")]
    shop_user = db.session.scalar(sa.select(User).where(User.sub == in_shop["sub"]))
    assert shop_user.client_pk == get_client("shop").id


def test_without_auto_create_the_other_client_signs_nobody_in(social_tenant, live, make_client, fakes, fake_google):
    web = social_tenant(google={"link_verified_email": True})
    shop = shop_tenant(live, make_client, fake_google, auto_create=False)
    social_sign_in(web, "google", fakes).exchange()
    flight = social_sign_in(shop, "google", fakes)
    assert flight.page.status_code == 200 and "Shop has no account for" in flight.page.text
    # Web's alice's password is not a shop password.
    page = flight.browser.login(flight.page, "alice", PASSWORD)
    assert page.status_code == 200 and "Invalid username or password." in page.text
    assert identities() == [("web", "google-1001", "alice")]


def test_auto_link_in_the_other_client_links_that_clients_own_user(
    social_tenant, live, make_client, make_user, fakes, fake_google
):
    web = social_tenant(google={"link_verified_email": True})
    shop = shop_tenant(live, make_client, fake_google, link_verified_email=True)
    shop_alice = make_user("shop", "alice", password=PASSWORD, email="alice@example.com", email_verified=True)
    social_sign_in(web, "google", fakes).exchange()
    assert social_sign_in(shop, "google", fakes).id_token()["sub"] == shop_alice.sub != web.user.sub
    assert identities() == [("web", "google-1001", "alice"), ("shop", "google-1001", "alice")]


def test_interleaved_flows_in_one_browser_stay_with_their_client(social_tenant, live, make_client, fakes, fake_google):
    """Both clients call their provider "google": the state, not the URL, says whose sign-in it is."""
    web = social_tenant(google={"link_verified_email": True})
    shop = shop_tenant(live, make_client, fake_google)
    web_flight = start_sign_in(web)
    shop_flight = start_sign_in(shop, browser=web_flight.browser)
    browser = web_flight.browser
    to_google_for_web = browser.get(button_href(web_flight.page, "google"))
    to_google_for_shop = browser.get(button_href(shop_flight.page, "google"))
    # Come back from the shop sign-in first, then from the web one.
    shop_flight.page = through_upstream(browser, to_google_for_shop, fakes)
    web_flight.page = through_upstream(browser, to_google_for_web, fakes)
    shop_claims, web_claims = shop_flight.id_token(), web_flight.id_token()
    assert (web_claims["aud"], web_claims["sub"]) == ("web", web.user.sub)
    assert shop_claims["aud"] == "shop" and shop_claims["sub"] != web.user.sub
    assert identities() == [("shop", "google-1001", "alice"), ("web", "google-1001", "alice")]
