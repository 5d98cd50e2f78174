"""Social login in Chromium: an admin adds GitHub to a client in the console, a person clicks "Continue with GitHub".

GitHub is the fake from tests/social_fakes.py, a real HTTP server on 127.0.0.1 whose authorize
endpoint approves at once. The relying party starts a real authorization code flow with PKCE
(Authlib's OAuth2Session), the browser goes to the hosted sign-in page, out to the fake GitHub
and back, and lands on the relying party's callback; the code is exchanged and the ID token
verified against the published JWKS. Screenshots go to tests/e2e/screenshots/.
"""

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

try:
    from playwright.sync_api import expect
except ImportError:  # the `chromium` fixture skips, or fails under AUTHGATE_E2E=1, and says why
    expect = None

from tests.e2e.helpers import sign_in_to_console
from tests.helpers import query_of, verify_jwt

pytestmark = pytest.mark.e2e


@pytest.fixture
def shop(console, relying_party, make_client, make_role):
    """A confidential web client whose redirect URI is the relying party's; return its secret."""
    _, secret = make_client(
        client_id="shop", name="Shop", redirect_uris=[relying_party.redirect_uri], scopes="openid profile email roles"
    )
    make_role("shop", "ROLE_VIEWER", "Browses the catalogue")
    make_role("shop", "ROLE_EDITOR", "Edits the catalogue")
    return secret


def add_github_in_the_console(page, console, fake, shoot) -> None:
    """The admin adds a GitHub provider (pointing at the fake) that gives new users ROLE_VIEWER."""
    from tests.social_fakes import UPSTREAM_CLIENT_ID, UPSTREAM_SECRET

    page.goto(f"{console.url}/admin/clients/shop")
    page.click(".tabs >> text=Identity providers")
    expect(page.locator("h1")).to_have_text("Identity providers")
    page.click("text=+ New provider")
    page.click(".kind-choice >> text=GitHub")
    expect(page.locator("#callback-url")).to_have_text(f"{console.url}/login/github/callback")
    expect(page.locator("#web_url")).to_have_value("https://github.com")
    expect(page.locator("#api_url")).to_have_value("https://api.github.com")
    page.fill("#upstream_client_id", UPSTREAM_CLIENT_ID)
    page.fill("#web_url", fake.url)
    page.fill("#api_url", fake.api_url)
    page.check("input[name=default_roles][value=ROLE_VIEWER]")
    # Forgot the secret: the error shows next to it, and what was typed stays.
    page.click("button:has-text('Add GitHub')")
    expect(page.locator("#client_secret ~ .field-error")).to_contain_text("Client secret is required")
    expect(page.locator("#upstream_client_id")).to_have_value(UPSTREAM_CLIENT_ID)
    expect(page.locator("input[name=default_roles][value=ROLE_VIEWER]")).to_be_checked()
    page.fill("#client_secret", UPSTREAM_SECRET)
    page.click("button:has-text('Add GitHub')")
    page.wait_for_url(f"{console.url}/admin/clients/shop/identity-providers/github")
    expect(page.locator(".alert-success")).to_contain_text("Added GitHub.")
    expect(page.locator("#callback-url")).to_have_text(f"{console.url}/login/github/callback")
    shoot(page, "social-1-github-provider")


def test_a_person_signs_in_with_github_through_the_hosted_page(
    console, shop, relying_party, fake_github, new_page, shoot
):
    admin = new_page()
    sign_in_to_console(admin, console)
    add_github_in_the_console(admin, console, fake_github, shoot)

    # The application sends a new browser to AuthGate with a real code + PKCE request.
    session = OAuth2Session(
        "shop",
        shop,
        scope="openid profile email roles",
        redirect_uri=relying_party.redirect_uri,
        token_endpoint_auth_method="client_secret_basic",
        code_challenge_method="S256",
    )
    verifier, nonce = generate_token(48), generate_token(16)
    url, state = session.create_authorization_url(
        f"{console.url}/oauth2/authorize", code_verifier=verifier, nonce=nonce
    )
    person = new_page()
    person.goto(url)
    expect(person).to_have_title("Sign in to Shop")
    button = person.locator(".social-buttons a[data-idp=github]")
    expect(button).to_have_text("Continue with GitHub")
    shoot(person, "social-2-login-page")
    button.click()
    person.wait_for_url(f"{relying_party.redirect_uri}?**")
    expect(person.locator("h1")).to_have_text("Back at the application")
    shoot(person, "social-3-back-at-the-app")
    assert fake_github.requests_to("/login/oauth/authorize"), "the browser never went to GitHub"

    callback = relying_party.url + next(path for path in relying_party.received if path.startswith("/cb?"))
    assert query_of(callback)["state"] == state
    token = session.fetch_token(f"{console.url}/oauth2/token", authorization_response=callback, code_verifier=verifier)
    claims = verify_jwt(token["id_token"], console.url, "shop")
    assert claims["nonce"] == nonce
    assert claims["amr"] == ["fed"] and claims["idp"] == "github"
    assert claims["roles"] == ["ROLE_VIEWER"]
    assert claims["preferred_username"] == "alice-gh" and claims["email"] == "alice@example.com"
    access = verify_jwt(token["access_token"], console.url, "shop", typ="at+jwt")
    assert access["roles"] == ["ROLE_VIEWER"] and access["sub"] == claims["sub"]

    # The admin finds the new user with the linked GitHub account, and unlinks it.
    admin.goto(f"{console.url}/admin/clients/shop/users/alice-gh")
    identities = admin.locator("#identities")
    expect(identities).to_contain_text("GitHub")
    expect(identities).to_contain_text("4242")
    expect(identities).to_contain_text("alice@example.com")
    shoot(admin, "social-4-linked-account")
    identities.locator("text=Unlink…").click()
    expect(admin.locator("h1")).to_have_text("Unlink GitHub from alice-gh?")
    expect(admin.locator(".alert-warning")).to_contain_text("no password and no other enabled provider")
    admin.click("button:has-text('Unlink GitHub')")
    admin.wait_for_url(f"{console.url}/admin/clients/shop/users/alice-gh")
    expect(admin.locator(".alert-success")).to_have_text("Unlinked the GitHub account from alice-gh.")
    expect(identities).to_contain_text("None yet.")
