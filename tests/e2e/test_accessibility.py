"""Accessibility of every hosted and console page, checked in Chromium with axe-core.

Each page is checked at a desktop (1280 x 800) and a phone (390 x 844) viewport against the WCAG 2.1
A and AA rules: no violation of impact "serious" or "critical" is allowed, and on the phone no
page may be wider than the screen. A few pages are checked again in dark mode for contrast. One
server and one browser serve the whole module; the console is signed in to once per viewport.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.e2e.conftest import ADMIN_PASSWORD
from tests.e2e.helpers import expect, sign_in_to_console
from tests.helpers import LiveServer, make_app
from tests.mailbox import link_in

try:
    from axe_playwright_python.sync_playwright import Axe
except ImportError:  # the `chromium` fixture has already skipped (or failed under AUTHGATE_E2E=1)
    Axe = None

pytestmark = pytest.mark.e2e

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"1280": DESKTOP, "390": PHONE}
CLIENT = "shop"
REDIRECT_URI = "http://127.0.0.1:9/cb"  # never reached: the tests stop at AuthGate's pages
USER_PASSWORD = "a long enough password"
VERIFIER = "v" * 64
SELF_SERVICE_CLIENT = "club"


@dataclass
class Site:
    url: str
    kid: str
    username: str = "admin"
    password: str = ADMIN_PASSWORD
    mailbox: object = None


@pytest.fixture(scope="module")
def site(tmp_path_factory, smtp_server):
    """One AuthGate for the module: the console, a client with roles, a user, a provider, a consent screen."""
    from flask_migrate import upgrade

    from app.services import clients, idps, keys, roles, users

    database = tmp_path_factory.mktemp("a11y") / "authgate.db"
    # Many people register and ask for links from this one address: no per-address limits here.
    app = make_app(f"sqlite:///{database}", AUTHGATE_REGISTER_ADDRESS_LIMIT=0, AUTHGATE_FORGOT_ADDRESS_LIMIT=0)
    server = LiveServer(app)
    with app.app_context():
        upgrade()
        keys.ensure_keys()
        result = app.test_cli_runner().invoke(args=["init", "--admin-password", ADMIN_PASSWORD])
        assert result.exit_code == 0, result.output
        clients.create_client(
            client_id=CLIENT,
            name="The Shop",
            description="Sells things",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            require_consent=True,
        )
        roles.create_role(CLIENT, "ROLE_EDITOR", "Edits the catalogue")
        users.create_user(
            CLIENT, "alice", password=USER_PASSWORD, first_name="Alice", last_name="Liddell",
            email="alice@example.com", roles=["ROLE_EDITOR"],
        )  # fmt: skip
        idps.create_provider(CLIENT, "github", upstream_client_id="upstream", client_secret="upstream secret")
        # The self-service pages: a client open for registration that wants verified addresses, real mail.
        clients.create_client(
            client_id=SELF_SERVICE_CLIENT, name="The Club", redirect_uris=[REDIRECT_URI],
            allow_registration=True, require_verified_email=True,
        )  # fmt: skip
        app.config["AUTHGATE_SMTP_URL"] = smtp_server.url
        kid = keys.list_keys()[0].kid
        set_up_mfa()
    yield Site(server.url, kid, mailbox=smtp_server)
    server.stop()


@pytest.fixture(scope="module")
def console_pages(chromium, site):
    """A page signed in to the console, per viewport."""
    contexts, pages = [], {}
    for name, viewport in VIEWPORTS.items():
        context = chromium.new_context(viewport=viewport)
        context.set_default_timeout(10_000)
        contexts.append(context)
        pages[name] = page = context.new_page()
        sign_in_to_console(page, site)
    yield pages
    for context in contexts:
        context.close()


@pytest.fixture
def fresh_page(new_page):
    """A page in a new browser profile (nobody signed in), at a viewport and colour scheme."""
    return new_page


# --- checking a page ----------------------------------------------------------------------


def blocking_violations(page, rules: list[str] | None = None) -> list[dict]:
    """axe's serious and critical violations of WCAG 2.1 A/AA on the page as it is now."""
    options: dict = {"resultTypes": ["violations"]}
    options["runOnly"] = {"type": "rule", "values": rules} if rules else {"type": "tag", "values": WCAG_21_AA}
    results = Axe().run(page, options=options)
    return [v for v in results.response["violations"] if v["impact"] in BLOCKING]


def report(violations: list[dict]) -> str:
    """Each rule id with its impact and the selectors of the elements that break it."""
    lines = []
    for violation in violations:
        targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"])
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return "\n".join(lines)


def check(page, viewport: dict) -> None:
    violations = blocking_violations(page)
    assert not violations, f"{page.url}:\n{report(violations)}"
    if viewport is PHONE:
        width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= inner, f"{page.url} is {width} px wide in a {inner} px window"


# --- the hosted pages ---------------------------------------------------------------------


def authorize_url(site: Site, client_id: str = CLIENT) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email",
        "state": "s",
        "nonce": "n",
        "code_challenge": create_s256_code_challenge(VERIFIER),
        "code_challenge_method": "S256",
    }
    return f"{site.url}/oauth2/authorize?{urlencode(query)}"


def open_login(page, site: Site) -> None:
    page.goto(authorize_url(site))
    expect(page.locator("input[name=username]")).to_be_visible()


def open_consent(page, site: Site) -> None:
    open_login(page, site)
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", USER_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("The Shop")


def open_logout_confirmation(page, site: Site) -> None:
    open_consent(page, site)  # signed in to AuthGate now
    page.goto(f"{site.url}/oauth2/logout")
    expect(page.locator("form button[type=submit]").first).to_be_visible()


def open_logged_out(page, site: Site) -> None:
    open_logout_confirmation(page, site)
    page.click("form button[type=submit] >> nth=0")
    page.wait_for_load_state()


def open_error(page, site: Site) -> None:
    page.goto(authorize_url(site, client_id="no-such-client"))
    expect(page.locator(".alert-error")).to_be_visible()


def open_account(page, site: Site) -> None:
    """The user's own account page, reached signed out: the sign-in brings the browser back to it."""
    page.goto(f"{site.url}/account/{CLIENT}")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", USER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/account/{CLIENT}")
    expect(page.locator("h1")).to_have_text("Your account")


def open_account_with_errors(page, site: Site) -> None:
    """The account page after a refused password change: the errors next to their fields."""
    open_account(page, site)
    page.fill("#current_password", "not the password")
    page.fill("#password", "a new long password")
    page.fill("#password_confirm", "another one")
    page.click("button:text('Change password')")
    expect(page.locator(".field-error")).to_have_text("The passwords differ.")


# Second factors: a client requiring them, bob who has none yet and carol with an authenticator app.
MFA_CLIENT = "vault"
MFA_RECOVERY_CODES: list[str] = []


def set_up_mfa() -> None:
    import pyotp

    from app.services import clients, mfa, users

    clients.create_client(client_id=MFA_CLIENT, name="The Vault", redirect_uris=[REDIRECT_URI], mfa_policy="required")
    users.create_user(MFA_CLIENT, "bob", password=USER_PASSWORD, email="bob@example.com")
    carol = users.create_user(MFA_CLIENT, "carol", password=USER_PASSWORD, email="carol@example.com")
    vault = clients.get_client(MFA_CLIENT)
    secret = mfa.start_totp(vault, carol)
    MFA_RECOVERY_CODES.extend(mfa.confirm_totp(vault, carol, pyotp.TOTP(secret).now()))


def mfa_authorize_url(site: Site) -> str:
    """A request of its own: a sign-in that completes uses its nonce up, and a nonce is refused once used."""
    return authorize_url(site, client_id=MFA_CLIENT).replace("&nonce=n&", f"&nonce={uuid.uuid4().hex}&")


def mfa_password(page, site: Site, username: str) -> None:
    page.goto(mfa_authorize_url(site))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", USER_PASSWORD)
    page.click("button[type=submit]:has-text('Sign in')")


def open_mfa_login(page, site: Site) -> None:
    page.goto(mfa_authorize_url(site))
    expect(page.locator("button:has-text('Sign in with a passkey')")).to_be_visible()


def open_mfa_enrol(page, site: Site) -> None:
    mfa_password(page, site, "bob")
    expect(page.locator("svg.qr-code")).to_be_visible()


def open_mfa_verify(page, site: Site) -> None:
    mfa_password(page, site, "carol")
    expect(page.locator("input[name=code]")).to_be_visible()


def open_mfa_account(page, site: Site) -> None:
    # Nothing listens at the redirect URI: answer for it, so the browser lands somewhere after the sign-in.
    page.route("http://127.0.0.1:9/**", lambda route: route.fulfill(body="back at the application"))
    open_mfa_verify(page, site)
    page.fill("input[name=code]", MFA_RECOVERY_CODES.pop())
    page.click("button[type=submit]")
    page.wait_for_url("http://127.0.0.1:9/cb**")
    page.goto(f"{site.url}/account/{MFA_CLIENT}/factors")
    expect(page.locator("h2")).to_have_text("Second factors")


# The self-service pages (register, verify, forgot, reset): each person gets a fresh address, so
# their messages on the shared SMTP server are theirs alone.
def open_register(page, site: Site) -> None:
    page.goto(authorize_url(site, SELF_SERVICE_CLIENT))
    page.click("text=Create an account")
    expect(page.locator("h1")).to_have_text("Create an account")


def open_register_errors(page, site: Site) -> None:
    open_register(page, site)
    page.fill("#email", "not an address")
    page.click("button[type=submit]")
    expect(page.locator("#username-error")).to_be_visible()


def registered(page, site: Site) -> str:
    """Register a new person on the check-your-inbox page; return their username (and email local part)."""
    username = f"p{uuid.uuid4().hex[:10]}"
    open_register(page, site)
    page.fill("#username", username)
    page.fill("#email", f"{username}@example.com")
    page.fill("#password", USER_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Check your inbox")
    return username


def open_check_inbox(page, site: Site) -> None:
    registered(page, site)


def open_verify(page, site: Site) -> None:
    username = registered(page, site)
    page.goto(link_in(site.mailbox.wait_for(f"{username}@example.com")))
    expect(page.locator("h1")).to_have_text("Verify your email address")


def open_verified(page, site: Site) -> None:
    open_verify(page, site)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Email address verified")


def open_verify_first(page, site: Site) -> None:
    username = registered(page, site)
    page.goto(authorize_url(site, SELF_SERVICE_CLIENT))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", USER_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Verify your email address first")


def open_forgot(page, site: Site) -> None:
    page.goto(authorize_url(site, SELF_SERVICE_CLIENT))
    page.click("text=Forgot password?")
    expect(page.locator("h1")).to_have_text("Forgot your password?")


def open_forgot_sent(page, site: Site) -> None:
    open_forgot(page, site)
    page.fill("#login", "nobody")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Check your inbox")


def open_reset(page, site: Site) -> None:
    username = registered(page, site)
    open_forgot(page, site)
    page.fill("#login", username)
    page.click("button[type=submit]")
    page.goto(link_in(site.mailbox.wait_for(f"{username}@example.com", count=2)))
    expect(page.locator("h1")).to_have_text("Choose a new password")


def open_reset_errors(page, site: Site) -> None:
    open_reset(page, site)
    page.fill("#password", "short")
    page.fill("#password_confirm", "short")
    page.click("button[type=submit]")
    expect(page.locator("#password-error")).to_be_visible()


def open_password_changed(page, site: Site) -> None:
    open_reset(page, site)
    page.fill("#password", "a brand new password")
    page.fill("#password_confirm", "a brand new password")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Password changed")


def open_link_invalid(page, site: Site) -> None:
    page.goto(f"{site.url}/reset/agl_no-such-link")
    expect(page.locator("h1")).to_have_text("This link does not work")


SELF_SERVICE: dict[str, Callable] = {
    "pages-register": open_register,
    "pages-register-errors": open_register_errors,
    "pages-check-inbox": open_check_inbox,
    "pages-verify": open_verify,
    "pages-verified": open_verified,
    "pages-verify-first": open_verify_first,
    "pages-forgot": open_forgot,
    "pages-forgot-sent": open_forgot_sent,
    "pages-reset": open_reset,
    "pages-reset-errors": open_reset_errors,
    "pages-password-changed": open_password_changed,
    "pages-link-invalid": open_link_invalid,
}

HOSTED: dict[str, Callable] = {
    "login": open_login,
    "consent": open_consent,
    "logout-confirmation": open_logout_confirmation,
    "logged-out": open_logged_out,
    "error": open_error,
    "account": open_account,
    "account-errors": open_account_with_errors,
    "mfa-login": open_mfa_login,
    "mfa-enrol": open_mfa_enrol,
    "mfa-verify": open_mfa_verify,
    "mfa-account": open_mfa_account,
    **SELF_SERVICE,
}


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("name", HOSTED)
def test_hosted_page(fresh_page, site, name, viewport):
    page = fresh_page(VIEWPORTS[viewport])
    HOSTED[name](page, site)
    check(page, VIEWPORTS[viewport])


# --- the console --------------------------------------------------------------------------


WIZARD_STEPS = ["Basic info", "Capabilities", "URIs & scopes", "Token settings", "Review"]


def wizard_at(step: int) -> Callable:
    """Go through the new-client wizard up to `step` (5 is the review)."""

    def go(page, site: Site) -> None:
        page.goto(f"{site.url}/admin/clients/new")
        actions = [
            lambda: (page.fill("#client_id", "new-app"), page.fill("#name", "New app")),
            lambda: page.click("button[value='preset:web']"),
            lambda: (
                page.fill("input[name=new_redirect_uris]", "https://app.example.com/cb"),
                page.click("button[value='add:redirect_uris']"),
                expect(page.locator("#redirect_uris-list code")).to_have_text(["https://app.example.com/cb"]),
            ),
            lambda: None,
        ]
        for action in actions[: step - 1]:
            action()
            page.click("button[value=next]")
        expect(page.locator(".stepper-item.current .stepper-label")).to_have_text(WIZARD_STEPS[step - 1])

    return go


def path(url_path: str) -> Callable:
    def go(page, site: Site) -> None:
        response = page.goto(site.url + url_path.format(kid=site.kid))
        assert response and response.ok, f"{url_path}: {response and response.status}"

    return go


def console_self_service_saved(page, site: Site) -> None:
    """The client page's self-service panel after saving it (swapped in by HTMX, with its notice)."""
    page.goto(f"{site.url}/admin/clients/{CLIENT}")
    panel = page.locator("#self_service")
    panel.locator("input[name=allow_registration]").check()
    panel.locator("input[name=default_roles][value=ROLE_EDITOR]").check()
    panel.locator("button[type=submit]").click()
    expect(page.locator("#self_service .alert-success")).to_have_text("Self-service settings saved.")


def console_reset_link_sent(page, site: Site) -> None:
    """The user page after the console emailed a password reset link (to the log: no SMTP in tests)."""
    page.goto(f"{site.url}/admin/clients/{CLIENT}/users/alice")
    page.click("text=Send password reset link")
    expect(page.locator(".alert-success").first).to_contain_text("Sent a password reset link to alice@example.com.")


def mfaconsole_policy_saved(page, site: Site) -> None:
    """The client page's Second factors panel after saving a policy (swapped in by HTMX, with its notice)."""
    page.goto(f"{site.url}/admin/clients/{SELF_SERVICE_CLIENT}")
    panel = page.locator("#mfa_panel")
    panel.locator("input[name=mfa_policy][value=optional]").check()
    panel.locator("button[type=submit]").click()
    expect(page.locator("#mfa_panel .alert-success")).to_have_text("Second factors are optional now.")


CONSOLE: dict[str, Callable] = {
    "dashboard": path("/admin/"),
    "clients": path("/admin/clients"),
    "client": path(f"/admin/clients/{CLIENT}"),
    **{f"wizard-step-{step}": wizard_at(step) for step in range(1, 6)},
    "roles": path(f"/admin/clients/{CLIENT}/roles"),
    "users": path(f"/admin/clients/{CLIENT}/users"),
    "new-user": path(f"/admin/clients/{CLIENT}/users/new"),
    "user": path(f"/admin/clients/{CLIENT}/users/alice"),
    "keys": path("/admin/keys"),
    "key-revoke": path("/admin/keys/{kid}/revoke"),
    "identity-providers": path(f"/admin/clients/{CLIENT}/identity-providers"),
    "new-identity-provider": path(f"/admin/clients/{CLIENT}/identity-providers/new"),
    "new-github-provider": path(f"/admin/clients/{CLIENT}/identity-providers/new?type=github"),
    "identity-provider": path(f"/admin/clients/{CLIENT}/identity-providers/github"),
    "console-self-service-saved": console_self_service_saved,
    "console-reset-link-sent": console_reset_link_sent,
    "mfaconsole-policy-saved": mfaconsole_policy_saved,
    "mfaconsole-user-factors": path(f"/admin/clients/{MFA_CLIENT}/users/carol"),
}


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("name", CONSOLE)
def test_console_page(console_pages, site, name, viewport):
    page = console_pages[viewport]
    CONSOLE[name](page, site)
    check(page, VIEWPORTS[viewport])


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_audit_page(console_pages, site, viewport):
    """The audit log, once the console has one."""
    if requests.get(f"{site.url}/admin/audit", allow_redirects=False, timeout=5).status_code == 404:
        pytest.skip("no /admin/audit in this version")
    page = console_pages[viewport]
    path("/admin/audit")(page, site)
    check(page, VIEWPORTS[viewport])


# --- what axe lets pass ---------------------------------------------------------------------

# axe-core no longer reports duplicate ids (its rules for them are deprecated), and an ARIA
# reference to a missing id only "needs review"; both hide a field's label or hint from a screen reader.
MARKUP_PROBLEMS = """() => {
  const problems = [], seen = new Map();
  const controls = "input, select, textarea, button, meter, output, progress";
  for (const el of document.querySelectorAll("[id]:not(input[type=hidden])")) {
    if (seen.has(el.id)) problems.push(`id "${el.id}" on both <${seen.get(el.id)}> and <${el.localName}>`);
    else seen.set(el.id, el.localName);
  }
  for (const el of document.querySelectorAll("[aria-describedby], [aria-labelledby], label[for]")) {
    const who = `<${el.localName}${el.id ? "#" + el.id : ""}>`;
    for (const name of ["aria-describedby", "aria-labelledby", "for"]) {
      for (const id of (el.getAttribute(name) || "").split(/\\s+/).filter(Boolean)) {
        const target = document.getElementById(id);
        if (!target) problems.push(`${who} ${name}="${id}" names no element`);
        else if (name === "for" && !target.matches(controls)) problems.push(`${who} for="${id}" names no form control`);
      }
    }
  }
  return problems;
}"""


@pytest.mark.parametrize("name", CONSOLE)
def test_console_page_labels_and_ids(console_pages, site, name):
    """Every id is unique and every label, description and hint reference names what it should."""
    page = console_pages["1280"]
    CONSOLE[name](page, site)
    problems = page.evaluate(MARKUP_PROBLEMS)
    assert not problems, f"{page.url}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", HOSTED)
def test_hosted_page_labels_and_ids(fresh_page, site, name):
    page = fresh_page(DESKTOP)
    HOSTED[name](page, site)
    problems = page.evaluate(MARKUP_PROBLEMS)
    assert not problems, f"{page.url}:\n" + "\n".join(problems)


# --- dark mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["login", "consent", "error"])
def test_hosted_page_contrast_in_dark_mode(fresh_page, site, name):
    page = fresh_page(DESKTOP, color_scheme="dark")
    HOSTED[name](page, site)
    assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    violations = blocking_violations(page, rules=["color-contrast"])
    assert not violations, f"{page.url}:\n{report(violations)}"


@pytest.mark.parametrize("name", ["dashboard", "client", "user", "keys", "wizard-step-2"])
def test_console_page_contrast_in_dark_mode(console_pages, site, name):
    page = console_pages["1280"]
    page.emulate_media(color_scheme="dark")
    try:
        CONSOLE[name](page, site)
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 17, 21)", "the dark scheme is not applied"
        violations = blocking_violations(page, rules=["color-contrast"])
        assert not violations, f"{page.url}:\n{report(violations)}"
    finally:
        page.emulate_media(color_scheme="light")


@pytest.mark.parametrize(
    "name",
    ["account", "account-errors", "pages-register-errors", "pages-check-inbox", "pages-verify-first", "pages-reset"],
)
def test_self_service_page_contrast_in_dark_mode(fresh_page, site, name):
    page = fresh_page(DESKTOP, color_scheme="dark")
    HOSTED[name](page, site)
    violations = blocking_violations(page, rules=["color-contrast"])
    assert not violations, f"{page.url}:\n{report(violations)}"
