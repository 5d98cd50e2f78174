"""An admin opens the audit log from the console's menu, filters it by kind and sees the failed sign-ins.

The failures are real: a second browser mistypes a password at the hosted sign-in page, and
types a name that is no account, which the log never shows.
"""

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the `chromium` fixture skips, or fails under AUTHGATE_E2E=1, and says why
    expect = None

from tests.e2e.helpers import sign_in_to_console

pytestmark = pytest.mark.e2e

TYPED_AT_UNKNOWN = "not-a-user-hunter2"


def fail_to_sign_in(page, console, username: str, password: str) -> None:
    page.goto(f"{console.url}/admin/")
    expect(page).to_have_title("Sign in to AuthGate console")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator(".alert-error")).to_be_visible()


def test_an_admin_filters_the_audit_log_by_kind(console, runner, new_page, shoot):
    made = runner.invoke(args=["users", "create", "--client", "authgate-console", "--username", "ops", "--no-password"])
    assert made.exit_code == 0, made.output
    stranger = new_page()
    fail_to_sign_in(stranger, console, "admin", "not the password")
    fail_to_sign_in(stranger, console, TYPED_AT_UNKNOWN, "whatever it is")

    page = new_page()
    sign_in_to_console(page, console)
    page.click(".console-nav >> text=Audit log")
    page.wait_for_url(f"{console.url}/admin/audit")
    expect(page.locator("h1")).to_have_text("Audit log")
    # Everything so far: `flask init` and a user made by the OS user, the two failures, the admin's sign-in.
    expect(page.locator("tr[data-kind=client_created]")).to_have_count(1)
    expect(page.locator("tr[data-kind=user_created]")).to_have_count(2)
    expect(page.locator("tr[data-kind=user_created]").first).to_contain_text("ops")
    expect(page.locator("tr[data-kind=user_created]").first).to_contain_text("cli:")
    expect(page.locator("tr[data-kind=login_succeeded]")).to_have_count(1)
    shoot(page, "audit-log")

    page.select_option("#filter-kind", "login_failed")
    page.click("text=Filter")
    page.wait_for_url(f"{console.url}/admin/audit?**kind=login_failed**")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("tr[data-kind=login_failed]")).to_have_count(2)
    # Newest first: the unknown name, shown only as such, then the admin's mistyped password.
    expect(rows.nth(0)).to_contain_text("(unknown account)")
    expect(rows.nth(0)).to_contain_text("unknown_user")
    expect(rows.nth(1)).to_contain_text("admin")
    expect(rows.nth(1)).to_contain_text("bad_password")
    expect(rows.nth(1)).to_contain_text("UTC")
    expect(page.locator("#filter-kind")).to_have_value("login_failed")
    assert TYPED_AT_UNKNOWN not in page.content()
    shoot(page, "audit-log-failed-sign-ins")

    # A time that is no time is explained next to its field; the kind still applies.
    page.fill("#filter-from", "yesterday")
    page.click("text=Filter")
    expect(page.locator("#filter-from-error")).to_have_text(
        "From must be a UTC date and time such as 2026-12-01 14:30."
    )
    expect(page.locator("#results tbody tr")).to_have_count(2)
