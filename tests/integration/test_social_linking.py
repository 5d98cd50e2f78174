"""Linking an upstream account to a local user: automatic only when both sides verified the email, else by password."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, LinkedIdentity, User
from app.services import identities as identity_service
from app.services import users as user_service
from app.services.clients import get_client
from tests.helpers import forms
from tests.integration.helpers import PASSWORD
from tests.social_fakes import social_sign_in

LINK_PAGE = "Link your Google account"


def identities() -> list[tuple[str, str, str]]:
    """(provider slug, subject, username) of every linked identity."""
    db.session.expire_all()
    rows = db.session.scalars(sa.select(LinkedIdentity).order_by(LinkedIdentity.id))
    return [(i.provider.slug, i.subject, db.session.get(User, i.user_id).username) for i in rows]


def kinds() -> list[str]:
    return [e.kind for e in db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]


def test_auto_link_when_both_sides_verified_the_email_and_the_provider_allows_it(social_tenant, fakes):
    tenant = social_tenant(google={"link_verified_email": True})
    claims = social_sign_in(tenant, "google", fakes).id_token()
    assert claims["sub"] == tenant.user.sub
    assert claims["amr"] == ["fed"] and claims["idp"] == "google"
    assert claims["roles"] == ["ROLE_ADMIN", "ROLE_VIEWER"]
    assert identities() == [("google", "google-1001", "alice")]
    assert kinds()[-2:] == ["identity_linked", "login_succeeded"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    ("link_verified_email", "local_verified"),
    [
        pytest.param(False, True, id="provider-does-not-auto-link"),
        pytest.param(True, False, id="local-email-unverified"),
        pytest.param(False, False, id="neither"),
    ],
)
def test_otherwise_the_password_links_once(social_tenant, fakes, link_verified_email, local_verified):
    tenant = social_tenant(google={"link_verified_email": link_verified_email})
    user_service.update_user("web", "alice", email_verified=local_verified)
    flight = social_sign_in(tenant, "google", fakes)
    page = flight.page
    assert page.status_code == 200 and LINK_PAGE in page.text
    assert "already has an account for <strong>alice@example.com</strong>" in page.text
    assert identities() == []
    link_form = forms(page.text)[0]
    assert link_form.fields["username"] == "alice@example.com"  # prefilled with the address, not the username
    assert {"csrf_token", "rid", "password"} <= set(link_form.fields)

    wrong = flight.browser.login(page, "alice", "not the password")
    assert wrong.status_code == 200 and "Invalid username or password." in wrong.text
    assert identities() == []
    assert kinds()[-1] == "login_failed"

    flight.page = flight.browser.login(wrong, "alice", PASSWORD)
    claims = flight.id_token()
    assert claims["sub"] == tenant.user.sub
    assert claims["amr"] == ["fed", "pwd"] and claims["idp"] == "google"
    assert identities() == [("google", "google-1001", "alice")]

    # From now on Google alone signs alice in.
    again = social_sign_in(tenant, "google", fakes).id_token()
    assert again["sub"] == tenant.user.sub and again["amr"] == ["fed"]


def test_a_separate_account_instead_of_linking(social_tenant, fakes):
    tenant = social_tenant(google={"default_roles": ["ROLE_VIEWER"]})
    flight = social_sign_in(tenant, "google", fakes)
    assert "Create a separate account instead" in flight.page.text
    flight.page = flight.browser.submit(flight.page, {"action": "create"}, index=1)
    claims = flight.id_token()
    assert claims["sub"] != tenant.user.sub
    assert "email" not in claims  # the address belongs to the existing account
    assert claims["roles"] == ["ROLE_VIEWER"] and claims["amr"] == ["fed"]
    assert identities() == [("google", "google-1001", "alice-2")]
    assert user_service.get_user(get_client("web"), "alice").email == "alice@example.com"


def test_no_separate_account_when_the_provider_creates_none(social_tenant, fakes):
    tenant = social_tenant(google={"auto_create": False})
    flight = social_sign_in(tenant, "google", fakes)
    assert LINK_PAGE in flight.page.text and "separate account" not in flight.page.text
    refused = flight.browser.http.post(
        flight.page.url, data={**forms(flight.page.text)[0].fields, "action": "create"}, allow_redirects=False
    )
    assert refused.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_nobody_with_the_email_and_no_auto_create_links_an_existing_account(social_tenant, fakes, fake_google):
    tenant = social_tenant(google={"auto_create": False})
    fake_google.account["email"] = "alice.personal@example.com"
    flight = social_sign_in(tenant, "google", fakes)
    assert flight.page.status_code == 200 and LINK_PAGE in flight.page.text
    assert "has no account for <strong>alice.personal@example.com</strong>" in flight.page.text
    assert "separate account" not in flight.page.text
    flight.page = flight.browser.login(flight.page, "alice", PASSWORD)
    assert flight.id_token()["sub"] == tenant.user.sub
    assert identities() == [("google", "google-1001", "alice")]


def test_linking_needs_an_enabled_account(social_tenant, fakes, make_user):
    tenant = social_tenant(google={"auto_create": False})
    make_user("web", "bob", password=PASSWORD, enabled=False)
    flight = social_sign_in(tenant, "google", fakes)
    page = flight.browser.login(flight.page, "bob", PASSWORD)
    assert page.status_code == 200 and "Invalid username or password." in page.text
    assert identities() == []


def test_an_account_links_one_upstream_account_per_provider(social_tenant, fakes, fake_google):
    tenant = social_tenant(google={"link_verified_email": True})
    social_sign_in(tenant, "google", fakes).exchange()
    # Another Google account claiming alice's address cannot take over the link.
    fake_google.account.update(sub="google-2002")
    page = social_sign_in(tenant, "google", fakes).page
    assert page.status_code == 403 and "already linked to another Google account" in page.text
    assert identities() == [("google", "google-1001", "alice")]


def test_the_link_page_belongs_to_its_sign_in(social_tenant, fakes):
    tenant = social_tenant()
    flight = social_sign_in(tenant, "google", fakes)
    # Another browser (no link request in its cookie) gets nothing from the URL.
    other = tenant.browser()
    assert other.get(flight.page.url).status_code == 400
    # Nor does the same browser at another provider's link page.
    page = flight.browser.get(flight.page.url.replace("/login/google/link", "/login/github/link"))
    assert page.status_code == 400 and "expired" in page.text


def test_link_form_needs_its_csrf_token(social_tenant, fakes):
    tenant = social_tenant()
    flight = social_sign_in(tenant, "google", fakes)
    fields = {**forms(flight.page.text)[0].fields, "username": "alice", "password": PASSWORD}
    del fields["csrf_token"]
    response = flight.browser.http.post(flight.page.url, data=fields, allow_redirects=False)
    assert response.status_code == 400 and "Please try again" in response.text
    assert identities() == []


def test_unlinked_identity_no_longer_signs_in(social_tenant, fakes):
    tenant = social_tenant(google={"link_verified_email": True, "auto_create": False})
    social_sign_in(tenant, "google", fakes).exchange()
    identity_service.unlink("web", "alice", "google")
    assert identities() == []
    # Auto-linking applies again, as on the first day.
    assert social_sign_in(tenant, "google", fakes).id_token()["sub"] == tenant.user.sub
    user_service.update_user("web", "alice", email_verified=False)
    identity_service.unlink("web", "alice", "google")
    assert LINK_PAGE in social_sign_in(tenant, "google", fakes).page.text
