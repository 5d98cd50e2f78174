"""Browser tests: Playwright for Python driving Debian's Chromium at /usr/bin/chromium.

Without Chromium (or Playwright) these tests skip; with AUTHGATE_E2E=1 (as .ci/run sets) a
missing browser fails the run instead. Never a downloaded browser: only the system one.
"""

import os
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
ADMIN_PASSWORD = "console admin password"


def _unavailable(reason: str):
    if os.environ.get("AUTHGATE_E2E") == "1":
        pytest.fail(f"AUTHGATE_E2E=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium, driven by Playwright; one browser per test module."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium):
    """Open a page in a fresh browser profile (its own cookies), as a different person would."""
    contexts = []

    def factory(viewport: dict | None = None, color_scheme: str = "light"):
        context = chromium.new_context(viewport=viewport or {"width": 1280, "height": 900}, color_scheme=color_scheme)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield factory
    for context in contexts:
        context.close()


@pytest.fixture
def shoot(request):
    """Save a full-page screenshot under tests/e2e/screenshots/, named after the test."""
    SCREENSHOTS.mkdir(exist_ok=True)
    # "sqlite-web--1-basic-info.png": the parameters (database, preset) and the step.
    callspec = getattr(request.node, "callspec", None)
    prefix = re.sub(r"[^A-Za-z0-9]+", "-", callspec.id if callspec else request.node.name).strip("-")

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{prefix}--{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@dataclass
class Console:
    url: str
    username: str = "admin"
    password: str = ADMIN_PASSWORD


@pytest.fixture
def console(app, runner):
    """AuthGate served over HTTP, initialised by `flask init` for its own address."""
    server = LiveServer(app)
    result = runner.invoke(args=["init", "--admin-password", ADMIN_PASSWORD])
    assert result.exit_code == 0, result.output
    yield Console(server.url)
    server.stop()


class RelyingParty:
    """A tiny application on 127.0.0.1: its /cb receives the browser after sign-in."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                received.append(self.path)
                body = b"<!doctype html><title>Signed in</title><h1>Back at the application</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.redirect_uri = f"{self.url}/cb"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def relying_party():
    party = RelyingParty()
    yield party
    party.stop()
