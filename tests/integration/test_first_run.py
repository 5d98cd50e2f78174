"""A new admin's first run: `make run PORT=...` serves at the issuer it prints, and the session cookie is ours."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]


def test_make_run_hands_its_port_to_init_and_to_the_server():
    dry_run = subprocess.run(["make", "-n", "run", "PORT=5201"], cwd=ROOT, capture_output=True, text=True, check=True)
    commands = [line for line in dry_run.stdout.splitlines() if "flask --app wsgi" in line]
    assert [line.split()[0] for line in commands] == ["AUTHGATE_PORT=5201", "AUTHGATE_PORT=5201"], dry_run.stdout
    assert commands[0].endswith(" init") and commands[1].endswith("--port 5201"), dry_run.stdout


def test_init_without_an_issuer_prints_the_console_of_the_port(tmp_path):
    """What `make run PORT=5201` runs first: the console it prints, and signs in through, is on 5201."""
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("AUTHGATE_")},
        "AUTHGATE_PORT": "5201",
        "AUTHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'authgate.db'}",
        "AUTHGATE_SECRET_KEY": "s" * 40,
        "AUTHGATE_BCRYPT_ROUNDS": "4",
    }
    init = subprocess.run([*FLASK, "init"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    assert "  console: http://localhost:5201/admin/" in init.stdout.splitlines()
    show = subprocess.run(
        [*FLASK, "clients", "show", "authgate-console", "--json"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["redirect_uris"] == ["http://localhost:5201/admin/callback"]


def session_cookie_of(app, runner, base_url: str) -> str:
    """The Set-Cookie header of a page that starts a sign-in (it keeps the PKCE verifier in the session)."""
    assert runner.invoke(args=["init", "--admin-password", "a long enough password"]).exit_code == 0
    response = app.test_client().get("/admin/login", base_url=base_url)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response.headers["Set-Cookie"]


def test_over_http_the_session_cookie_has_an_authgate_name(app, runner):
    cookie = session_cookie_of(app, runner, "http://localhost:5000")
    assert cookie.startswith("authgate_session=")
    attributes = {part.strip().split("=")[0] for part in cookie.split(";")[1:]}
    assert attributes == {"HttpOnly", "Path", "SameSite"}
    assert "; Path=/;" in cookie and "SameSite=Lax" in cookie


@pytest.mark.settings(AUTHGATE_ISSUER="https://id.example.com")
def test_over_https_the_session_cookie_is_host_only(app, runner):
    """`__Host-` cookies are taken by browsers only when Secure, with Path=/ and no Domain."""
    cookie = session_cookie_of(app, runner, "https://id.example.com")
    assert cookie.startswith("__Host-authgate_session=")
    attributes = {part.strip().split("=")[0] for part in cookie.split(";")[1:]}
    assert attributes == {"Secure", "HttpOnly", "Path", "SameSite"}
    assert "; Path=/;" in cookie


def test_pages_link_a_favicon_that_is_served(app, runner, client):
    """Without one, every page view cost a 404 for /favicon.ico."""
    assert runner.invoke(args=["init", "--admin-password", "a long enough password"]).exit_code == 0
    for page in (client.get("/admin/login", follow_redirects=True), client.get("/oauth2/authorize")):
        links = re.findall(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', page.get_data(as_text=True))
        assert links == ["/static/favicon.svg"], page.get_data(as_text=True)[:500]
    with client.get("/static/favicon.svg") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
        assert icon.get_data(as_text=True).startswith("<svg")
