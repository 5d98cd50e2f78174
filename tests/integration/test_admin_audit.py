"""The console's audit log: every column, newest first, filters by client, user, kind, actor and time, pages."""

import html
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent
from app.services import clients as client_service
from app.services import users as user_service
from tests.integration.helpers import set_up_console, sign_in, text

TYPED_PASSWORD = "hunter2-typed-as-a-username"


@pytest.fixture
def admin(app, runner, client, make_client, make_user):
    set_up_console(app, runner)
    make_client(client_id="shop", name="Shop")
    make_client(client_id="blog", name="Blog")
    make_user("shop", "alice")
    make_user("blog", "bob")
    sign_in(client)
    return client


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2020, 11, day, hour, tzinfo=UTC)


@pytest.fixture
def seeded(admin):
    """Five events of November 2020, each told apart by its IP address 192.0.2.<day>."""
    shop = client_service.get_client("shop")
    blog = client_service.get_client("blog")
    alice = user_service.get_user(shop, "alice")
    bob = user_service.get_user(blog, "bob")
    db.session.add_all(
        [
            AuditEvent(kind="login_succeeded", at=at(1), client_pk=shop.id, user_id=alice.id, username="alice",
                       ip="192.0.2.1", detail={"method": "pwd"}),
            AuditEvent(kind="login_failed", at=at(2, 11), client_pk=shop.id, user_id=alice.id, username="alice",
                       ip="192.0.2.2", detail={"reason": "bad_password"}),
            # An older row that kept what was typed: no account, so perhaps a password in the wrong box.
            AuditEvent(kind="login_failed", at=at(3), client_pk=shop.id, username=TYPED_PASSWORD, ip="192.0.2.3",
                       detail={"reason": "unknown_user"}),
            AuditEvent(kind="user_updated", at=at(4), client_pk=blog.id, user_id=bob.id, username="bob",
                       ip="192.0.2.4", actor="admin:root", detail={"changes": {"first_name": ["", "Bob"]}}),
            AuditEvent(kind="client_secret_rotated", at=at(5), client_pk=blog.id, ip="192.0.2.5", actor="cli:ops",
                       detail={"changes": {"client_secret": "rotated"}}),
        ]
    )  # fmt: skip
    db.session.commit()
    return admin


def results(response) -> str:
    page = text(response)
    return page[page.index('<div id="results"') :]


def days_listed(response) -> list[int]:
    """The seeded events on the page, by day, in the order shown."""
    return [int(day) for day in re.findall(r"192\.0\.2\.(\d+)", results(response))]


def row_of(response, day: int) -> str:
    row = re.search(
        rf"<tr data-kind[^>]*>(?:(?!</tr>).)*192\.0\.2\.{day}<(?:(?!</tr>).)*</tr>", results(response), re.S
    )
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", row.group(0))))


def error_after(response, field: str) -> str | None:
    """The error shown right after the field's input, before the next field's."""
    page = text(response)
    start = page.index(f'name="{field}"')
    following = re.search(r'name="(?!csrf)[a-z]+"', page[start + 1 :])
    end = start + 1 + following.start() if following else len(page)
    error = re.search(r'<div class="field-error"[^>]*>([^<]*)</div>', page[start:end])
    return html.unescape(error.group(1)) if error else None


def test_the_console_links_to_the_log_which_shows_every_column_newest_first(seeded):
    dashboard = text(seeded.get("/admin/"))
    assert 'href="/admin/audit"' in dashboard  # the menu
    assert (
        'href="/admin/audit?kind=login_succeeded"' in dashboard and 'href="/admin/audit?kind=login_failed"' in dashboard
    )
    page = seeded.get("/admin/audit")
    assert page.status_code == 200 and "<h1>Audit log</h1>" in text(page)
    assert days_listed(page) == [5, 4, 3, 2, 1]
    assert row_of(page, 4) == (
        " 2020-11-04 09:00:00 UTC user updated blog bob 192.0.2.4 admin:root first_name : — → Bob "
    )
    assert (
        row_of(page, 5)
        == " 2020-11-05 09:00:00 UTC client secret rotated blog — 192.0.2.5 cli:ops client_secret : rotated "
    )
    assert row_of(page, 2) == " 2020-11-02 11:00:00 UTC login failed shop alice 192.0.2.2 — reason : bad_password "
    assert 'href="/admin/clients/shop/users/alice"' in results(page)
    # Something created is shown with its values, not as changes from nothing.
    assert '<span class="mono">email</span>: alice@example.com</li>' in results(page)
    # The console's own setup is there too: `flask init` by the OS user, the admin's sign-in with no actor.
    assert "client created" in results(page) and "cli:" in results(page)


def test_a_failed_sign_in_at_an_unknown_account_never_shows_what_was_typed(seeded):
    page = seeded.get("/admin/audit")
    assert TYPED_PASSWORD not in text(page)
    assert (
        row_of(page, 3)
        == " 2020-11-03 09:00:00 UTC login failed shop (unknown account) 192.0.2.3 — reason : unknown_user "
    )
    # Nor can it be found by searching for it.
    searched = seeded.get(f"/admin/audit?user={TYPED_PASSWORD}")
    assert searched.status_code == 200 and days_listed(searched) == [] and TYPED_PASSWORD not in results(searched)
    dashboard = text(seeded.get("/admin/"))
    assert TYPED_PASSWORD not in dashboard and "(unknown account)" in dashboard


@pytest.mark.parametrize(
    ("query", "days"),
    [
        ("client=blog", [5, 4]),
        ("user=ALICE", [2, 1]),
        ("kind=login_failed", [3, 2]),
        ("actor=cli:ops", [5]),
        ("from=2020-11-02&to=2020-11-04", [4, 3, 2]),  # a bare "to" date covers its whole day
        ("from=2020-11-02T11:00&to=2020-11-03 09:00:00", [3, 2]),
        ("from=2020-11-02T11:00:01Z&to=20201104", [4, 3]),  # Z is UTC; a basic date too covers its day
        ("client=shop&kind=login_failed&from=2020-11-03", [3]),
        ("client=blog&user=alice", []),
    ],
)
def test_filters(seeded, query, days):
    page = seeded.get(f"/admin/audit?{query}")
    assert page.status_code == 200 and days_listed(page) == days
    for name, value in (pair.split("=") for pair in query.split("&")):
        assert f'name="{name}" value="{value}"' in text(page) or f'value="{value}" selected' in text(page)
    if not days:
        assert "No events match these filters." in text(page)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("client", "nope", "There is no client 'nope'."),
        ("kind", "made_up", "Choose one of the kinds in the list."),
        ("user", "x" * 255, "User must be at most 254 characters."),
        ("from", "yesterday", "From must be a UTC date and time such as 2026-12-01 14:30."),
        ("to", "2020-13-01", "To must be a UTC date and time such as 2026-12-01 14:30."),
        ("from", "2020-11-02T10:00+02:00", "From is read as UTC: leave out the time zone."),
        ("actor", "admin:\x00", "Actor must not contain a NUL character."),
    ],
)
def test_a_bad_filter_is_explained_next_to_its_field_and_changes_nothing(seeded, field, value, error):
    page = seeded.get(
        "/admin/audit", query_string={field: value, "kind": "login_failed"} if field != "kind" else {field: value}
    )
    assert page.status_code == 422
    assert error_after(page, field) == error
    # The other filters still apply; the bad one is left out.
    assert days_listed(page) == ([3, 2] if field != "kind" else [5, 4, 3, 2, 1])


def test_to_before_from_is_refused_on_to(seeded):
    page = seeded.get("/admin/audit?from=2020-11-04&to=2020-11-02")
    assert page.status_code == 422 and error_after(page, "to") == "To must not be before From."
    assert error_after(page, "from") is None
    assert days_listed(page) == [5, 4]


def test_a_page_number_past_the_end_shows_no_events(seeded):
    page = seeded.get(f"/admin/audit?page={10**30}")
    assert page.status_code == 200 and days_listed(page) == []


def test_the_kinds_offered_are_those_recorded(seeded):
    select = re.search(r'<select id="filter-kind".*?</select>', text(seeded.get("/admin/audit")), re.S).group(0)
    options = re.findall(r'<option value="([a-z_]+)"', select)
    assert {"login_failed", "user_updated", "client_secret_rotated", "client_created"} <= set(options)
    assert "refresh_token_reused" not in options  # none recorded yet
    assert options == sorted(options)


@pytest.fixture
def crowd(admin):
    """120 events over 120 clients: a page that loaded each event's client would show it in its query count."""
    db.session.execute(
        sa.insert(client_service.Client),
        [{"client_id": f"app-{n:03d}", "name": f"App {n}", "token_endpoint_auth_methods": ["none"],
          "grant_types": ["authorization_code"], "redirect_uris": ["http://127.0.0.1:8765/cb"], "scopes": ["openid"]}
         for n in range(120)],
    )  # fmt: skip
    pks = db.session.scalars(sa.select(client_service.Client.id).where(client_service.Client.client_id.like("app-%")))
    db.session.execute(
        sa.insert(AuditEvent),
        [{"kind": "crowd_event", "at": at(1), "client_pk": pk, "ip": f"198.51.100.{n}", "detail": {}}
         for n, pk in enumerate(pks)],
    )  # fmt: skip
    db.session.commit()
    return admin


def test_pages_of_fifty_in_the_same_few_queries(app, crowd):
    statements = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    first = crowd.get("/admin/audit?kind=crowd_event")
    on_first = len(statements)
    assert first.status_code == 200 and "1\u201350 of 120" in text(first)
    assert len(re.findall(r'<tr data-kind="crowd_event"', text(first))) == 50
    assert "198.51.100.119" in text(first) and "app-119" in text(first)  # newest first

    statements.clear()
    last = crowd.get("/admin/audit?kind=crowd_event&page=3")
    assert "101\u2013120 of 120" in text(last) and len(re.findall(r'<tr data-kind="crowd_event"', text(last))) == 20
    assert len(statements) == on_first
    events_queries = [s for s in statements if "FROM audit_events" in s and "count(" not in s and "DISTINCT" not in s]
    assert len(events_queries) == 1


def test_pagination_keeps_the_filters_and_swaps_only_the_results(crowd):
    first = text(crowd.get("/admin/audit?kind=crowd_event"))
    assert 'href="/admin/audit?kind=crowd_event&amp;page=2"' in first
    fragment = crowd.get("/admin/audit?kind=crowd_event&page=2", headers={"HX-Request": "true", "HX-Target": "results"})
    assert text(fragment).lstrip().startswith('<div id="results"') and "<html" not in text(fragment)
    assert "51\u2013100 of 120" in text(fragment)
