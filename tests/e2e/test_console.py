"""A new admin, from the browser alone, registers an application, adds a role and a user, and signs that user in.

Chromium drives the console; a relying party built with Authlib's client then uses the new
client for real: an authorization code flow with PKCE through the hosted sign-in page (web
and single-page apps), or client credentials (machine to machine). Tokens are checked
against the published JWKS. Each wizard step's screenshot goes to tests/e2e/screenshots/.
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

USER_PASSWORD = "a long enough password"
PRESETS = {
    "web": ("Web application", ["client_secret_basic"], ["authorization_code", "refresh_token"]),
    "spa": ("Single-page or mobile app", ["none"], ["authorization_code", "refresh_token"]),
    "m2m": ("Machine to machine", ["client_secret_basic"], ["client_credentials"]),
}


def current_step(page):
    return page.locator(".stepper-item.current .stepper-label")


def ticked(page, name: str) -> list[str]:
    return page.eval_on_selector_all(f"input[name={name}]:checked", "inputs => inputs.map(i => i.value)")


def run_wizard(page, console, shoot, preset: str, client_id: str, name: str, redirect_uri: str | None) -> str | None:
    """Register a client through the four steps, going back once to find values kept; return its secret."""
    title, methods, grants = PRESETS[preset]
    page.goto(f"{console.url}/admin/clients/new")
    expect(current_step(page)).to_have_text("Basic info")
    page.fill("#client_id", client_id)
    page.fill("#name", name)
    page.fill("#description", f"Registered by the browser test ({title})")
    expect(page.locator("#client_id_check")).to_contain_text(f"{client_id} is available")
    shoot(page, "1-basic-info")
    page.click("button[value=next]")

    expect(current_step(page)).to_have_text("Capabilities")
    page.click(f"button[value='preset:{preset}']")
    expect(page.locator(".preset.selected .preset-title")).to_have_text(title)
    assert ticked(page, "token_endpoint_auth_methods") == methods
    assert ticked(page, "grant_types") == grants
    shoot(page, "2-capabilities")

    # Back a step: what was typed is still there; forward again: the preset's choices too.
    page.click("button[value=back]")
    expect(current_step(page)).to_have_text("Basic info")
    expect(page.locator("#client_id")).to_have_value(client_id)
    expect(page.locator("#name")).to_have_value(name)
    page.click("button[value=next]")
    expect(current_step(page)).to_have_text("Capabilities")
    assert ticked(page, "grant_types") == grants
    page.click("button[value=next]")

    expect(current_step(page)).to_have_text("URIs & scopes")
    if redirect_uri:
        # A plain-http address that is not loopback is refused next to the input, and kept.
        page.fill("input[name=new_redirect_uris]", "http://app.example.com/cb")
        page.click("button[value='add:redirect_uris']")
        expect(page.locator("#new_redirect_uris-error")).to_contain_text("use https")
        expect(page.locator("input[name=new_redirect_uris]")).to_have_value("http://app.example.com/cb")
        page.fill("input[name=new_redirect_uris]", redirect_uri)
        page.press("input[name=new_redirect_uris]", "Enter")
        expect(page.locator("#redirect_uris-list code")).to_have_text([redirect_uri])
    else:
        page.fill("input[name=new_scopes]", "reports:read")
        page.click("button[value='add:scopes']")
        expect(page.locator(".chip-custom")).to_contain_text("reports:read")
    shoot(page, "3-uris-scopes")
    page.click("button[value=next]")

    expect(current_step(page)).to_have_text("Token settings")
    expect(page.locator("#access_token_lifetime")).to_have_value("3600")
    page.fill("#access_token_lifetime", "900")
    shoot(page, "4-token-settings")
    page.click("button[value=back]")
    expect(current_step(page)).to_have_text("URIs & scopes")
    if redirect_uri:
        expect(page.locator("#redirect_uris-list code")).to_have_text([redirect_uri])
    page.click("button[value=next]")
    expect(page.locator("#access_token_lifetime")).to_have_value("900")
    page.click("button[value=next]")

    expect(current_step(page)).to_have_text("Review")
    expect(page.locator(".review-list").first).to_contain_text(client_id)
    expect(page.locator(".wizard-card")).to_contain_text("15 minutes")
    shoot(page, "5-review")
    page.click("button[value=save]")

    page.wait_for_url(f"{console.url}/admin/clients/{client_id}")
    expect(page.locator(".alert-success")).to_contain_text(f"Created {name}.")
    shoot(page, "6-created")
    if preset == "spa":
        expect(page.locator("#client-secret")).to_have_count(0)
        return None
    secret = page.locator("#client-secret").inner_text().strip()
    assert secret.startswith("agcs_")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.url)
    page.click("button[data-copy=client-secret]")
    expect(page.locator("button[data-copy=client-secret]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    # Shown once: a reload no longer has it.
    page.reload()
    expect(page.locator("#client-secret")).to_have_count(0)
    return secret


def add_role_and_user(page, console, shoot, client_id: str) -> None:
    page.goto(f"{console.url}/admin/clients/{client_id}/roles")
    page.fill("#name", "ROLE_EDITOR")
    page.fill("#description", "Edits the catalogue")
    page.click("text=Create role")
    expect(page.locator("#roles_panel .alert-success")).to_have_text("Created role ROLE_EDITOR.")
    expect(page.locator("#roles_panel table")).to_contain_text("ROLE_EDITOR")
    shoot(page, "7-role")

    page.goto(f"{console.url}/admin/clients/{client_id}/users/new")
    page.fill("#username", "alice")
    page.fill("#email", "alice@example.com")
    page.fill("#first_name", "Alice")
    page.fill("#last_name", "Liddell")
    page.fill("#password", USER_PASSWORD)
    page.check("input[name=roles][value=ROLE_EDITOR]")
    page.click("text=Create user")
    page.wait_for_url(f"{console.url}/admin/clients/{client_id}/users/alice")
    expect(page.locator("h1")).to_have_text("Alice Liddell")
    assert ticked(page, "roles") == ["ROLE_EDITOR"]
    shoot(page, "8-user")


def sign_user_in(new_page, shoot, console, relying_party, client_id: str, secret: str | None, name: str) -> dict:
    """The application sends a new browser to AuthGate; the user signs in; the app redeems the code."""
    session = OAuth2Session(
        client_id,
        secret,
        scope="openid profile email roles",
        redirect_uri=relying_party.redirect_uri,
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    url, state = session.create_authorization_url(
        f"{console.url}/oauth2/authorize", code_verifier=verifier, nonce="n-e2e"
    )
    page = new_page()
    page.goto(url)
    expect(page).to_have_title(f"Sign in to {name}")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", USER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{relying_party.redirect_uri}?**")
    expect(page.locator("h1")).to_have_text("Back at the application")
    shoot(page, "9-signed-in-at-the-app")
    callback = relying_party.url + next(path for path in relying_party.received if path.startswith("/cb?"))
    assert query_of(callback)["state"] == state
    token = session.fetch_token(f"{console.url}/oauth2/token", authorization_response=callback, code_verifier=verifier)
    claims = verify_jwt(token["id_token"], console.url, client_id)
    assert claims["nonce"] == "n-e2e"
    return {"token": token, "claims": claims}


@pytest.mark.parametrize("preset", ["web", "spa", "m2m"])
def test_a_new_admin_registers_an_app_and_signs_a_user_into_it(preset, console, new_page, shoot, relying_party):
    client_id, name = f"{preset}-app", f"My {PRESETS[preset][0]}"
    admin = new_page()
    sign_in_to_console(admin, console)
    shoot(admin, "0-dashboard")
    signs_in_users = preset != "m2m"
    secret = run_wizard(
        admin, console, shoot, preset, client_id, name, relying_party.redirect_uri if signs_in_users else None
    )

    if not signs_in_users:
        # Machine to machine: the service gets a token for itself with the secret from the page.
        service = OAuth2Session(client_id, secret, scope="reports:read")
        token = service.fetch_token(f"{console.url}/oauth2/token", grant_type="client_credentials")
        claims = verify_jwt(token["access_token"], console.url, client_id, typ="at+jwt")
        assert claims["sub"] == client_id and claims["scope"] == "reports:read"
        assert token["expires_in"] == 900
        return

    add_role_and_user(admin, console, shoot, client_id)
    signed_in = sign_user_in(new_page, shoot, console, relying_party, client_id, secret, name)
    claims = signed_in["claims"]
    assert claims["roles"] == ["ROLE_EDITOR"]
    assert claims["preferred_username"] == "alice" and claims["name"] == "Alice Liddell"
    access = verify_jwt(signed_in["token"]["access_token"], console.url, client_id, typ="at+jwt")
    assert access["roles"] == ["ROLE_EDITOR"] and access["exp"] - access["iat"] == 900

    # The admin sees the sign-in on the dashboard.
    admin.goto(f"{console.url}/admin/")
    expect(admin.locator("section", has_text="Recent sign-ins")).to_contain_text(client_id)


def test_console_sign_out_and_a_non_admin_is_turned_away(console, runner, new_page, shoot):
    page = new_page()
    sign_in_to_console(page, console)
    page.click("text=Sign out")
    page.wait_for_url(f"{console.url}/admin/signed-out")
    expect(page.locator("h1")).to_have_text("You are signed out")
    # Signing in again asks for the password: a user of the console's client without the admin role
    # signs in but is turned away with a page that says why, and may sign in as someone else.
    created = runner.invoke(
        args=["users", "create", "--client", "authgate-console", "--username", "viewer", "--password", USER_PASSWORD]
    )
    assert created.exit_code == 0, created.output
    page.click("text=Sign in again")
    expect(page).to_have_title("Sign in to AuthGate console")
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", USER_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Not a console administrator")
    expect(page.locator(".alert-error")).to_contain_text("ROLE_AUTHGATE_ADMIN")
    shoot(page, "not-an-admin")
    page.click("text=Sign in as someone else")
    expect(page).to_have_title("Sign in to AuthGate console")


# --- what a new admin tripped over (issue 14) -------------------------------------------------


def test_the_emergency_key_switch_asks_for_its_word(console, new_page):
    page = new_page()
    sign_in_to_console(page, console)
    page.goto(f"{console.url}/admin/keys")
    confirm = page.get_by_label("Type switch to confirm")
    expect(confirm).to_be_hidden()
    page.check("input[name=now]")
    expect(confirm).to_be_visible()
    page.click("text=Rotate keys")
    expect(page.locator("#confirm-error")).to_have_text("Type switch to switch at once; nothing was changed.")
    expect(page.locator(".alert-success")).to_have_count(0)
    page.check("input[name=now]")
    page.get_by_label("Type switch to confirm").fill("switch")
    page.click("text=Rotate keys")
    expect(page.locator(".alert-success")).to_contain_text("signs from now on")


def test_the_wizard_warns_as_soon_as_openid_is_unticked(console, new_page):
    page = new_page()
    sign_in_to_console(page, console)
    page.goto(f"{console.url}/admin/clients/new")
    page.fill("#client_id", "new-app")
    page.fill("#name", "New app")
    page.click("button[value=next]")
    page.click("button[value='preset:web']")
    page.click("button[value=next]")
    expect(current_step(page)).to_have_text("URIs & scopes")
    warning = page.locator("#openid-warning")
    expect(warning).to_be_hidden()
    page.click("label.chip-toggle:has(input[value=openid])")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("it gets no ID token")
    page.click("label.chip-toggle:has(input[value=openid])")
    expect(warning).to_be_hidden()
    # A scope typed with a space is refused next to its input, not split in two.
    page.fill("input[name=new_scopes]", "bad scope")
    page.click("button[value='add:scopes']")
    expect(page.locator("#new_scopes-error")).to_contain_text("holds a space, which separates scopes")
    expect(page.locator(".chip-custom")).to_have_count(0)


PHONE = {"width": 390, "height": 844}
LONG_ID = "shop-with-a-rather-long-client-identifier"


def within_the_screen(locator, width: int = PHONE["width"]) -> None:
    """The element is shown and wholly inside the window's width: nothing to scroll sideways for."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, f"{locator} at {box}"


def test_on_a_phone_every_section_and_action_is_within_the_screen(console, chromium, make_client, make_user):
    make_client(client_id=LONG_ID, name="The Shop", redirect_uris=["https://shop.example.com/a/long/path/to/the/cb"])
    make_user(LONG_ID, "alice", first_name="Alice", last_name="Liddell")
    context = chromium.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        sign_in_to_console(page, console)
        for section in ("Dashboard", "Clients", "Roles", "Users", "Signing keys", "Audit log"):
            within_the_screen(page.locator(".console-nav-item", has_text=section))
        within_the_screen(page.get_by_role("button", name="Sign out", exact=True))
        page.goto(f"{console.url}/admin/clients/{LONG_ID}")
        within_the_screen(page.get_by_role("link", name="Rotate secret"))
        within_the_screen(page.get_by_role("link", name="Delete", exact=True))
        page.goto(f"{console.url}/admin/clients/{LONG_ID}/users/alice")
        within_the_screen(page.get_by_role("link", name="Delete user"))
        within_the_screen(page.get_by_role("button", name="Sign out", exact=True))
        page.goto(f"{console.url}/admin/clients/{LONG_ID}/roles")
        within_the_screen(page.get_by_label("Client"))
    finally:
        context.close()
