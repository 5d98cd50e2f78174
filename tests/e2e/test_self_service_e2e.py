"""Self-service in Chromium: a person registers, verifies the emailed link, resets a forgotten password.

The relying party starts a real authorization code flow with PKCE (Authlib's OAuth2Session); the
messages go to the real SMTP server of the `mailbox` fixture, and the browser opens the links read
from them. Screenshots of every page go to tests/e2e/screenshots/ (and to /work/shots/ when it exists).
"""

from pathlib import Path

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

try:
    from playwright.sync_api import expect
except ImportError:  # the `chromium` fixture skips, or fails under AUTHGATE_E2E=1, and says why
    expect = None

from tests.helpers import query_of, verify_jwt
from tests.mailbox import link_in

pytestmark = pytest.mark.e2e

PASSWORD = "bobs long password"
NEW_PASSWORD = "a brand new password"
PHONE = {"width": 390, "height": 844}
SHOTS = Path("/work/shots")


@pytest.fixture
def shop(console, relying_party, make_client, make_role):
    """A client open for registration that wants verified email addresses; return its secret."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Role

    _, secret = make_client(
        client_id="shop", name="Shop", redirect_uris=[relying_party.redirect_uri], scopes="openid profile email roles",
        allow_registration=True, require_verified_email=True,
    )  # fmt: skip
    make_role("shop", "ROLE_CUSTOMER", "Buys things")
    make_role("shop", "ROLE_STAFF", "Runs the shop")
    db.session.execute(sa.update(Role).where(Role.name == "ROLE_CUSTOMER").values(is_default=True))
    db.session.commit()
    return secret


@pytest.fixture
def snap(shoot):
    """Screenshot into tests/e2e/screenshots/ and, for the notes, /work/shots/pages-<name>.png."""

    def take(page, name: str) -> None:
        shoot(page, name)
        if SHOTS.is_dir():
            page.screenshot(path=str(SHOTS / f"pages-{name}.png"), full_page=True)

    return take


class App:
    """The relying party's side: start a sign-in, then redeem the code and verify the ID token."""

    def __init__(self, console, relying_party, secret):
        self.console, self.relying_party = console, relying_party
        self.session = OAuth2Session(
            "shop", secret, scope="openid profile email roles", redirect_uri=relying_party.redirect_uri,
            token_endpoint_auth_method="client_secret_basic", code_challenge_method="S256",
        )  # fmt: skip
        self.verifier, self.nonce = generate_token(48), generate_token(16)

    def authorization_url(self) -> str:
        url, self.state = self.session.create_authorization_url(
            f"{self.console.url}/oauth2/authorize", code_verifier=self.verifier, nonce=self.nonce
        )
        return url

    def claims(self, page) -> dict:
        expect(page.locator("h1")).to_have_text("Back at the application")
        assert query_of(page.url)["state"] == self.state
        token = self.session.fetch_token(
            f"{self.console.url}/oauth2/token", authorization_response=page.url, code_verifier=self.verifier
        )
        claims = verify_jwt(token["id_token"], self.console.url, "shop")
        assert claims["nonce"] == self.nonce
        return claims


def test_a_person_registers_verifies_the_link_and_later_resets_the_password(
    console, shop, relying_party, mailbox, new_page, snap
):
    # --- registration, from the application's sign-in ------------------------------------------
    application = App(console, relying_party, shop)
    page = new_page()
    page.goto(application.authorization_url())
    expect(page.locator("h1")).to_have_text("Sign in")
    snap(page, "login")
    page.click("text=Create an account")
    expect(page.locator("h1")).to_have_text("Create an account")
    snap(page, "register")
    page.fill("#username", "bob")
    page.fill("#email", "bob@example")
    page.fill("#first_name", "Bob")
    page.fill("#last_name", "Builder")
    page.fill("#password", "short")
    page.click("button:has-text('Create account')")
    expect(page.locator("#email-error")).to_contain_text("Email is not a valid address")
    expect(page.locator("#password-error")).to_have_text("Password must be at least 8 characters.")
    expect(page.locator("#username")).to_have_value("bob")
    expect(page.locator("#password")).to_have_value("")
    snap(page, "register-errors")
    page.fill("#email", "bob@example.com")
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Create account')")
    expect(page.locator("h1")).to_have_text("Check your inbox")
    expect(page.locator(".alert-info")).to_contain_text("bob@example.com")
    snap(page, "check-inbox")

    # --- the emailed link: a page with a button, then back to the application -------------------
    link = link_in(mailbox.wait_for("bob@example.com"))
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Verify your email address")
    snap(page, "verify")
    page.click("button:has-text('Verify my email address')")
    expect(page.locator("h1")).to_have_text("Email address verified")
    snap(page, "verified")
    page.click("text=Continue to Shop")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    claims = application.claims(page)
    assert claims["email"] == "bob@example.com" and claims["email_verified"] is True
    assert claims["roles"] == ["ROLE_CUSTOMER"] and claims["given_name"] == "Bob"

    page.goto(link)  # used up
    expect(page.locator("h1")).to_have_text("This link does not work")
    snap(page, "link-invalid")

    # --- a forgotten password, another day, in another browser -----------------------------------
    application = App(console, relying_party, shop)
    page = new_page()
    page.goto(application.authorization_url())
    page.click("text=Forgot password?")
    expect(page.locator("h1")).to_have_text("Forgot your password?")
    snap(page, "forgot")
    page.fill("#login", "bob@example.com")
    page.click("button:has-text('Send me a link')")
    expect(page.locator("h1")).to_have_text("Check your inbox")
    snap(page, "forgot-sent")
    page.goto(link_in(mailbox.wait_for("bob@example.com", count=2)))
    expect(page.locator("h1")).to_have_text("Choose a new password")
    snap(page, "reset")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", "not the same")
    page.click("button:has-text('Change password')")
    expect(page.locator("#password_confirm-error")).to_have_text("The two passwords differ.")
    snap(page, "reset-errors")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", NEW_PASSWORD)
    page.click("button:has-text('Change password')")
    expect(page.locator("h1")).to_have_text("Password changed")
    snap(page, "password-changed")
    page.click("text=Sign in to Shop")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator(".alert-error")).to_have_text("Invalid username or password.")
    page.fill("input[name=password]", NEW_PASSWORD)
    page.click("button:has-text('Sign in')")
    assert application.claims(page)["sub"] == claims["sub"]


def test_an_unverified_user_is_asked_to_verify_first_and_the_pages_fit_a_phone_and_the_dark_scheme(
    console, shop, relying_party, mailbox, make_user, new_page, snap
):
    make_user("shop", "carol", password=PASSWORD, email="carol@example.com")
    application = App(console, relying_party, shop)
    page = new_page(PHONE, color_scheme="dark")
    page.goto(application.authorization_url())
    snap(page, "login-phone-dark")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Verify your email address first")
    snap(page, "verify-first-phone-dark")
    page.click("button:has-text('Send the link')")
    expect(page.locator(".alert-success")).to_contain_text("carol@example.com")
    snap(page, "verify-first-sent-phone-dark")
    page.goto(link_in(mailbox.wait_for("carol@example.com")))
    page.click("button:has-text('Verify my email address')")
    page.click("text=Continue to Shop")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    assert application.claims(page)["email_verified"] is True

    page = new_page(PHONE)
    page.goto(App(console, relying_party, shop).authorization_url())
    page.click("text=Create an account")
    page.click("button:has-text('Create account')")
    expect(page.locator("#username-error")).to_have_text("Choose a username.")
    snap(page, "register-errors-phone")
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner
