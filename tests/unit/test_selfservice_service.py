"""One-time links: hashed, single-use, expiring, superseded by a newer link, dead after a change of
password or email; and the account allowance of messages."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import LinkToken
from app.services import ValidationError, guard, selfservice, users
from app.services.selfservice import LinkInvalid
from tests.mailbox import link_in

PASSWORD = "correct horse"


@pytest.fixture
def shop(app, make_client, make_user, mailbox):
    with app.app_context():
        make_client(client_id="shop", allow_registration=True)
        make_user("shop", "ann", email="ann@example.com")
    return mailbox


def token_of(message) -> str:
    return link_in(message).split("?")[0].rsplit("/", 1)[1]


def ann():
    client = selfservice.find_client("shop")
    return client, users.get_user(client, "ann")


def test_only_a_hash_of_the_link_is_stored_and_it_works_once(app, shop):
    with app.app_context():
        selfservice.send_verification(*ann())
        token = token_of(shop.wait_for("ann@example.com"))
        stored = db.session.scalars(sa.select(LinkToken.token_hash)).all()
        assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64
        user, _ = selfservice.verify_email(token)
        assert user.email_verified
        with pytest.raises(LinkInvalid, match="invalid or has expired"):
            selfservice.verify_email(token)


def test_a_newer_link_ends_the_older_one(app, shop):
    with app.app_context():
        selfservice.send_reset_link(*ann())
        selfservice.send_reset_link(*ann())
        first, second = (token_of(shop.wait_for("ann@example.com", n)) for n in (1, 2))
        with pytest.raises(LinkInvalid):
            selfservice.reset_password(first, "a new password")
        selfservice.reset_password(second, "a new password")


def test_an_expired_link_is_refused(app, shop):
    with app.app_context():
        selfservice.send_reset_link(*ann())
        token = token_of(shop.wait_for("ann@example.com"))
        db.session.execute(sa.update(LinkToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        db.session.commit()
        with pytest.raises(LinkInvalid):
            selfservice.reset_password(token, "a new password")
        assert users.authenticate(*ann()[:1], "ann", PASSWORD)[0] is not None


def test_a_change_of_password_ends_reset_links_and_a_reset_verifies_the_address(app, shop):
    with app.app_context():
        selfservice.send_reset_link(*ann())
        stale = token_of(shop.wait_for("ann@example.com"))
        users.set_password("shop", "ann", "changed by an admin")
        with pytest.raises(LinkInvalid):
            selfservice.reset_password(stale, "a new password")
        selfservice.send_reset_link(*ann())
        fresh = token_of(shop.wait_for("ann@example.com", 2))
        user, _ = selfservice.reset_password(fresh, "a new password")
        assert user.email_verified


def test_a_new_address_counts_only_once_its_link_is_used_and_an_admin_change_ends_that_link(app, shop):
    with app.app_context():
        client, user = ann()
        selfservice.request_email_change(client, user, "ann@new.example.com")
        token = token_of(shop.wait_for("ann@new.example.com"))
        assert (ann()[1].email, selfservice.pending_email(ann()[1])) == ("ann@example.com", "ann@new.example.com")
        user, _ = selfservice.verify_email(token)
        assert (user.email, user.email_verified) == ("ann@new.example.com", True)

        selfservice.request_email_change(client, user, "ann@third.example.com")
        stale = token_of(shop.wait_for("ann@third.example.com"))
        users.update_user("shop", "ann", email="ann@admin.example.com")
        with pytest.raises(LinkInvalid):
            selfservice.verify_email(stale)
        assert ann()[1].email == "ann@admin.example.com"


def test_an_address_taken_meanwhile_is_refused_and_the_link_stays_unused(app, shop, make_user):
    with app.app_context():
        selfservice.request_email_change(*ann(), "shared@example.com")
        token = token_of(shop.wait_for("shared@example.com"))
        make_user("shop", "bob", email="shared@example.com")
        with pytest.raises(ValidationError, match="used by another account"):
            selfservice.verify_email(token)
        assert ann()[1].email == "ann@example.com"
        assert selfservice.peek(token, "verify_email") is not None


@pytest.mark.settings(AUTHGATE_MAIL_ACCOUNT_LIMIT=2)
def test_messages_to_one_account_are_limited(app, shop):
    with app.app_context():
        selfservice.send_verification(*ann())
        selfservice.send_verification(*ann())
        with pytest.raises(guard.Throttled):
            selfservice.send_verification(*ann())
    assert len(shop.to("ann@example.com")) == 2


def test_a_reset_request_for_no_account_sends_nothing_and_stores_nothing(app, shop):
    with app.app_context():
        client = selfservice.find_client("shop")
        selfservice.request_reset(client, "nobody@example.com", "192.0.2.1")
        selfservice.request_reset(client, "ann", "192.0.2.1")
        shop.wait_for("ann@example.com")
        selfservice.mail.outbox().wait()
        assert shop.summary() == [("ann@example.com", "Reset your password for Shop")]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LinkToken)) == 1
