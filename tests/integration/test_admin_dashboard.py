"""Console dashboard, and pages that stay fast with 1,000 clients and 10,000 users."""

import re
import time

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Client, Role, User
from app.services import clients as client_service
from tests.helpers import forms
from tests.integration.helpers import set_up_console, sign_in, text


@pytest.fixture
def admin(app, runner, client):
    set_up_console(app, runner)
    sign_in(client)
    return client


def stat(response, name: str) -> int:
    return int(re.search(rf'data-stat="{name}">(\d+)<', text(response)).group(1))


def test_dashboard_counts_and_shows_recent_sign_ins_and_failures(app, admin, make_client, make_role, make_user):
    make_client(client_id="shop", redirect_uris=["http://127.0.0.1:8765/cb"], token_endpoint_auth_methods=["none"])
    make_role("shop", "ROLE_A")
    make_user("shop", "alice")
    # A failed sign-in at the hosted page of the shop.
    browser = app.test_client()
    page = browser.get(
        "/oauth2/authorize?response_type=code&client_id=shop&redirect_uri=http://127.0.0.1:8765/cb"
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGKSx-_dMw&code_challenge_method=S256",
        follow_redirects=True,
    )
    (form,) = forms(text(page))
    browser.post("/login", data={**form.fields, "username": "mallory", "password": "guess guess"})
    dashboard = admin.get("/admin/")
    assert dashboard.status_code == 200
    assert (stat(dashboard, "clients"), stat(dashboard, "users"), stat(dashboard, "roles")) == (2, 2, 2)
    sign_ins, failures = text(dashboard).split("Failed sign-ins")
    assert "admin" in sign_ins and "authgate-console" in sign_ins
    # A typed name that names no account is neither kept nor shown (it may be a password).
    assert "(unknown account)" in failures and "mallory" not in failures
    assert "unknown user" in failures and 'href="/admin/clients/shop"' in failures


def test_every_time_on_a_page_says_its_zone(admin, make_client):
    """The dashboard's sign-ins, the clients list and a client page: one format, with UTC written out."""
    made, _ = make_client(client_id="shop")
    created = f"><span>{made.created_at:%Y-%m-%d}</span> <span>{made.created_at:%H:%M} UTC</span></time>"
    for url in ("/admin/clients", "/admin/clients/shop"):
        assert created in text(admin.get(url))
    sign_ins = text(admin.get("/admin/")).split("Recent sign-ins", 1)[1]
    assert re.search(
        r"<td><time [^>]*><span>\d{4}-\d\d-\d\d</span> <span>\d\d:\d\d UTC</span></time></td><td>admin</td>", sign_ins
    )


def test_dashboard_guides_a_first_time_admin(admin):
    html = text(admin.get("/admin/"))
    assert "Get your first application signing users in" in html
    assert "http://localhost/.well-known/openid-configuration" in html


@pytest.fixture
def crowd(admin):
    """1,000 clients; 10,000 users and 20 roles in one of them."""
    db.session.execute(
        sa.insert(Client),
        [
            {"client_id": f"app-{n:04d}", "name": f"App {n:04d}", "token_endpoint_auth_methods": ["none"],
             "grant_types": ["authorization_code"], "redirect_uris": ["http://127.0.0.1:8765/cb"], "scopes": ["openid"]}
            for n in range(1000)
        ],
    )  # fmt: skip
    big = db.session.scalar(sa.select(Client.id).where(Client.client_id == "app-0500"))
    db.session.execute(sa.insert(Role), [{"client_pk": big, "name": f"ROLE_{n:02d}"} for n in range(20)])
    db.session.execute(
        sa.insert(User),
        [{"client_pk": big, "username": f"user{n:05d}", "email": f"user{n:05d}@example.com"} for n in range(10_000)],
    )
    db.session.commit()
    return admin


def test_pages_stay_fast_with_a_thousand_clients_and_ten_thousand_users(app, crowd):
    statements = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    pages = [
        ("/admin/clients", "1\u201325 of 1001"),
        ("/admin/clients?q=app-09&page=2", "26\u201350 of 100"),
        ("/admin/clients/app-0500/users", "1\u201325 of 10000"),
        ("/admin/clients/app-0500/users?q=user0999", "user09999"),
        ("/admin/clients/app-0500/users?page=400", "9976\u201310000 of 10000"),
        ("/admin/clients/app-0500/roles", "ROLE_19"),
        ("/admin/clients/app-0500", "App 0500"),
        ("/admin/", "10001"),
    ]
    for path, expected in pages:
        statements.clear()
        started = time.perf_counter()
        response = crowd.get(path)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, path
        assert expected in text(response), path
        # A page runs a handful of queries, however many rows there are (no query per row).
        assert len(statements) <= 12, (path, statements)
        assert elapsed < 2, (path, elapsed)
    assert client_service.totals() == {"clients": 1001, "users": 10_001, "roles": 21}
