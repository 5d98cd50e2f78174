"""An admin ends a user's sign-in lock before its time: on the user's console page or with `flask users unlock`.

The lock is made by failed sign-ins at the hosted sign-in page, counted on the test Redis (so it
is the shared counters that are cleared); once unlocked, the right password signs in again.
"""

import getpass
import re
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent
from app.services import clients as client_service
from app.services import guard
from app.services import users as user_service
from tests.helpers import forms
from tests.integration.helpers import authorize_params, post, set_up_console, sign_in, text

pytestmark = [pytest.mark.redis, pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=3, AUTHGATE_LOCKOUT_WAIT_SECONDS=300)]

USER_PAGE = "/admin/clients/shop/users/alice"
PASSWORD = "alice's own password"
# prompt=login: every attempt gets the sign-in form.
AUTHORIZE = "/oauth2/authorize?" + urlencode(authorize_params("shop", prompt="login"))


@pytest.fixture
def alice(app, make_client, make_user):
    make_client(client_id="shop", name="Shop")
    return make_user("shop", "alice", password=PASSWORD)


def sign_in_as_alice(browser, password: str):
    """One attempt at the hosted sign-in page."""
    page = browser.get(AUTHORIZE, follow_redirects=True)
    (form,) = forms(text(page))
    return browser.post("/login", data={**form.fields, "username": "alice", "password": password})


def lock(app, failures: int = 3):
    """Mistype alice's password often enough to lock her: then even the right one is turned away.

    Return alice's browser.
    """
    browser = app.test_client()
    for _ in range(failures):
        assert sign_in_as_alice(browser, "not her password").status_code == 200
    assert sign_in_as_alice(browser, PASSWORD).status_code == 429
    return browser


def lock_state() -> int | None:
    shop = client_service.get_client("shop")
    return guard.lock_state(shop, user_service.get_user(shop, "alice"))


def unlocked_events() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == guard.ACCOUNT_UNLOCKED)))


@pytest.fixture
def admin(app, runner, client, alice):
    set_up_console(app, runner)
    sign_in(client)
    return client


def test_the_user_page_shows_the_lock_and_unlocks(app, admin):
    page = text(admin.get(USER_PAGE))
    assert "Locked" not in page and "/unlock" not in page

    browser = lock(app)
    assert 290 <= lock_state() <= 300
    page = text(admin.get(USER_PAGE))
    assert "Locked — about 5 minutes left." in page
    assert re.search(r'<form method="post" action="/admin/clients/shop/users/alice/unlock"', page)

    assert admin.post(f"{USER_PAGE}/unlock").status_code == 400  # no CSRF token
    assert lock_state() is not None

    response = post(admin, f"{USER_PAGE}/unlock")
    assert response.status_code == 303 and response.headers["Location"] == USER_PAGE
    page = text(admin.get(USER_PAGE))
    assert "Unlocked: alice can sign in again." in page and "Locked —" not in page
    assert lock_state() is None
    (event,) = unlocked_events()
    assert (event.actor, event.username, event.detail) == ("admin:admin", "alice", {"was_locked": True})
    # The failures are forgotten too: one more failure does not lock again, and the right password signs in.
    assert sign_in_as_alice(browser, "not her password").status_code == 200
    assert lock_state() is None
    signed_in = sign_in_as_alice(browser, PASSWORD)
    assert signed_in.status_code == 303 and signed_in.headers["Location"].startswith("/oauth2/authorize")


def test_unlock_over_htmx_answers_with_the_status_block(app, admin):
    lock(app)
    response = post(admin, f"{USER_PAGE}/unlock", headers={"HX-Request": "true", "HX-Target": "status"})
    assert response.status_code == 200
    assert text(response).lstrip().startswith('<section id="status"')
    assert "Unlocked: alice can sign in again." in text(response) and "Locked —" not in text(response)
    again = post(admin, f"{USER_PAGE}/unlock", headers={"HX-Request": "true", "HX-Target": "status"})
    assert "alice was not locked" in text(again)


@pytest.mark.settings(AUTHGATE_LOCKOUT_FAILURES=3, AUTHGATE_LOCKOUT_WAIT_SECONDS=60)
def test_a_lock_of_a_minute_says_minute(app, admin):
    lock(app)
    assert "Locked — about 1 minute left." in text(admin.get(USER_PAGE))


def test_flask_users_unlock(app, runner, alice):
    browser = lock(app)
    result = runner.invoke(args=["users", "unlock", "--client", "shop", "--username", "alice"])
    assert result.exit_code == 0 and result.output == "Unlocked alice in client shop: they can sign in again.\n"
    assert lock_state() is None
    (event,) = unlocked_events()
    assert (event.actor, event.detail) == (f"cli:{getpass.getuser()}", {"was_locked": True})

    assert sign_in_as_alice(browser, PASSWORD).status_code == 303
    again = runner.invoke(args=["users", "unlock", "--client", "shop", "--username", "alice"])
    assert again.exit_code == 0 and again.output == "alice in client shop was not locked.\n"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--client", "nope", "--username", "alice"], "Error: no client 'nope'\n"),
        (["--client", "shop", "--username", "nobody"], "Error: client 'shop' has no user 'nobody'\n"),
    ],
)
def test_flask_users_unlock_of_someone_unknown_is_one_line(runner, alice, args, error):
    result = runner.invoke(args=["users", "unlock", *args])
    assert result.exit_code == 2 and result.output == error
    assert unlocked_events() == []
