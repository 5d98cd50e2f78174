"""Helpers shared by the browser tests; fixtures live in conftest.py."""

try:
    from playwright.sync_api import expect
except ImportError:  # the `chromium` fixture skips, or fails under AUTHGATE_E2E=1, and says why
    expect = None


def sign_in_to_console(page, console):
    page.goto(f"{console.url}/admin/")
    expect(page).to_have_title("Sign in to AuthGate console")
    page.fill("input[name=username]", console.username)
    page.fill("input[name=password]", console.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{console.url}/admin/")
    expect(page.locator("h1")).to_have_text("Dashboard")
