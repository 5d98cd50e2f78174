"""Passkeys in Chromium, with the DevTools virtual authenticator standing in for a phone or a security key.

The authenticator (CTAP2, internal transport, resident keys, user verification that succeeds) is
added to the page over CDP, so navigator.credentials answers without a person. A passkey is
registered on the account page, then used as the second factor after a password, then alone from
the login page (passwordless); each sign-in ends at the relying party, whose code is exchanged and
whose ID token is verified against the published JWKS. WebAuthn refuses an IP address as the
relying party id, so AuthGate is served as http://localhost here. Screenshots of the enrolment
and second-step pages go to /work/shots/mfa-*.png when that folder exists.
"""

import time
from pathlib import Path

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from tests.e2e.helpers import expect
from tests.helpers import LiveServer, verify_jwt

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough password"
SHOTS = Path("/work/shots")


@pytest.fixture
def site(app, relying_party, make_client, make_user):
    """AuthGate at http://localhost:<port> with a client whose MFA policy is `optional`, and its user alice."""
    server = LiveServer(app)
    url = server.url.replace("127.0.0.1", "localhost")
    app.config["AUTHGATE_ISSUER"] = url
    _, secret = make_client(
        client_id="shop", name="The Shop", redirect_uris=[relying_party.redirect_uri], mfa_policy="optional",
        scopes="openid profile email", token_endpoint_auth_methods=["client_secret_basic"],
    )  # fmt: skip
    make_user("shop", "alice", password=PASSWORD, first_name="Alice", last_name="Liddell")
    yield url, secret
    server.stop()


def authenticator(page) -> None:
    """A platform authenticator that holds discoverable credentials and verifies its user."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


class RelyingParty:
    def __init__(self, url, secret, party):
        self.url, self.party = url, party
        self.session = OAuth2Session(
            "shop", secret, scope="openid profile email", redirect_uri=party.redirect_uri, code_challenge_method="S256"
        )
        self.verifier = generate_token(48)

    def start(self, **extra) -> str:
        url, _ = self.session.create_authorization_url(
            f"{self.url}/oauth2/authorize", code_verifier=self.verifier, nonce=generate_token(8), **extra
        )
        return url

    def id_claims(self, page) -> dict:
        expect(page.locator("h1")).to_have_text("Back at the application")
        token = self.session.fetch_token(
            f"{self.url}/oauth2/token", authorization_response=page.url, code_verifier=self.verifier
        )
        return verify_jwt(token["id_token"], self.url, "shop")


def shot(page, name: str) -> None:
    if SHOTS.is_dir():
        page.screenshot(path=str(SHOTS / f"mfa-{name}.png"), full_page=True)


def sign_in_with_password(page, rp: RelyingParty, **extra) -> None:
    page.goto(rp.start(**extra))
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]:has-text('Sign in')")


def test_passkey_registration_second_factor_and_passwordless(new_page, site, relying_party):
    url, secret = site
    page = new_page()
    authenticator(page)

    # Signed in with a password (no factor yet), alice adds a passkey on her account page.
    rp = RelyingParty(url, secret, relying_party)
    sign_in_with_password(page, rp)
    assert rp.id_claims(page)["amr"] == ["pwd"]
    page.goto(f"{url}/account/shop/factors")
    expect(page.locator("h2")).to_have_text("Second factors")
    shot(page, "account")
    page.fill("#passkey-name", "Laptop")
    page.click("button:has-text('Add a passkey')")
    # A first factor comes with recovery codes, shown once.
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    page.click("text=I saved them")
    expect(page.locator(".passkey-list li")).to_contain_text("Laptop")
    shot(page, "account-passkey")

    # The next sign-in asks for the passkey after the password.
    rp = RelyingParty(url, secret, relying_party)
    sign_in_with_password(page, rp, prompt="login")
    expect(page.locator("h1")).to_have_text("Two-step verification")
    shot(page, "second-step-passkey")
    page.click("button:has-text('Use a passkey')")
    claims = rp.id_claims(page)
    assert claims["amr"] == ["pwd", "hwk", "user", "mfa"] and claims["acr"] == "urn:authgate:acr:mfa"

    # Without cookies, the login page's passkey button signs alice in with no password at all.
    page.context.clear_cookies()
    rp = RelyingParty(url, secret, relying_party)
    page.goto(rp.start())
    shot(page, "login")
    page.click("button:has-text('Sign in with a passkey')")
    claims = rp.id_claims(page)
    assert claims["amr"] == ["hwk", "user", "mfa"] and claims["acr"] == "urn:authgate:acr:mfa"

    # Removing it: the next password sign-in has no second step.
    page.goto(f"{url}/account/shop/factors")
    page.click(".passkey-list button:has-text('Remove')")
    expect(page.locator(".passkey-list")).to_have_count(0)
    rp = RelyingParty(url, secret, relying_party)
    sign_in_with_password(page, rp, prompt="login")
    assert rp.id_claims(page)["amr"] == ["pwd"]


@pytest.mark.parametrize(
    ("name", "viewport", "scheme"),
    [("desktop", {"width": 1280, "height": 900}, "light"), ("phone-dark", {"width": 390, "height": 844}, "dark")],
)
def test_totp_enrolment_and_second_step_pages(new_page, site, relying_party, name, viewport, scheme):
    """The authenticator-app pages as people see them (screenshots), enrolled and used in the browser."""
    import pyotp

    url, secret = site
    page = new_page(viewport=viewport, color_scheme=scheme)
    rp = RelyingParty(url, secret, relying_party)
    sign_in_with_password(page, rp)
    rp.id_claims(page)
    page.goto(f"{url}/account/shop/factors")
    page.click("button:has-text('Set up')")
    expect(page.locator("h1")).to_have_text("Set up an authenticator app")
    expect(page.locator("svg.qr-code")).to_be_visible()
    shot(page, f"enrol-{name}")
    page.click("summary")
    key = page.locator("code.secret").inner_text()
    shot(page, f"enrol-key-{name}")
    totp = pyotp.TOTP(key)
    page.fill("input[name=code]", totp.now())
    page.click("button[type=submit]")
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    shot(page, f"recovery-codes-{name}")
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner

    rp = RelyingParty(url, secret, relying_party)
    sign_in_with_password(page, rp, prompt="login")
    expect(page.locator("h1")).to_have_text("Two-step verification")
    page.fill("input[name=code]", "000000" if totp.now() != "000000" else "111111")
    page.click("button:has-text('Verify')")
    expect(page.locator(".field-error")).to_be_visible()
    shot(page, f"second-step-{name}")
    page.fill("input[name=code]", totp.at(time.time() + 30))
    page.click("button:has-text('Verify')")
    assert rp.id_claims(page)["amr"] == ["pwd", "otp", "mfa"]
