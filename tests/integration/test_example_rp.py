"""examples/flask_rp.py against a live AuthGate: a hostile name shows as text, a failed callback as a page."""

import importlib.util
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.helpers import Browser

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flask_rp.py"
HOSTILE = "<img src=x onerror=alert(4)>"
PASSWORD = "a long enough password"


def load_example():
    spec = importlib.util.spec_from_file_location("flask_rp", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def relying_party(live, make_client, make_user):
    """The example served on 127.0.0.1 (the same host as AuthGate: only the cookie names keep them apart)."""
    holder = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    url = f"http://127.0.0.1:{server.port}"
    _, secret = make_client(
        client_id="demo",
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[f"{url}/callback"],
        post_logout_redirect_uris=[f"{url}/"],
    )
    make_user("demo", "mallory", password=PASSWORD, first_name=HOSTILE, last_name="")
    holder["app"] = load_example().create_app(live.url, "demo", secret)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    thread.join(5)


def sign_in(browser: Browser, url: str):
    """From the example's /login through AuthGate's hosted page and back to the example's /callback."""
    login_page = browser.get(f"{url}/login")
    back = browser.login(login_page, "mallory", PASSWORD)
    assert back.is_redirect and back.headers["Location"].startswith(f"{url}/callback"), back.text[:300]
    return browser.http.get(back.headers["Location"])


def test_a_hostile_first_name_is_shown_as_text(live, relying_party):
    browser = Browser(live.url)
    home = sign_in(browser, relying_party)
    assert home.status_code == 200, home.text[:500]
    assert "Hello &lt;img src=x onerror=alert(4)&gt;" in home.text
    assert "<img" not in home.text
    assert {"authgate_session", "demo_rp_session"} <= set(browser.http.cookies.keys())


def test_a_callback_with_a_state_this_browser_did_not_start_is_an_error_page(live, relying_party):
    browser = Browser(live.url)
    browser.get(f"{relying_party}/login")  # a sign-in started, so the session has a state to compare
    forged = browser.http.get(f"{relying_party}/callback?code=stolen&state=forged")
    assert forged.status_code == 400
    assert "<h1>Sign-in failed</h1>" in forged.text and "Traceback" not in forged.text
    assert "Try again" in forged.text


def test_a_refusal_from_authgate_is_an_error_page(live, relying_party):
    browser = Browser(live.url)
    refused = browser.http.get(f"{relying_party}/callback?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E")
    assert refused.status_code == 400
    assert "<p>&lt;b&gt;no&lt;/b&gt;</p>" in refused.text
