"""Social sign-in through fake Google and GitHub servers, finished with a real code exchange by Authlib."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, LinkedIdentity, User
from app.services import identities, idps
from app.services import users as user_service
from tests.helpers import forms, verify_jwt
from tests.social_fakes import UPSTREAM_CLIENT_ID, _s256, social_sign_in, start_sign_in


def test_login_page_offers_the_enabled_providers_of_the_client(social_tenant, make_client):
    tenant = social_tenant()
    idps.create_provider(
        "web", "oidc", slug="corp", name="Corp SSO", issuer="https://sso.example.com/realms/corp",
        upstream_client_id="x", client_secret="y", enabled=False,
    )  # fmt: skip
    page = start_sign_in(tenant).page
    assert page.status_code == 200
    assert "Continue with Google" in page.text and "Continue with GitHub" in page.text
    assert "Corp SSO" not in page.text
    assert 'data-idp="google"' in page.text and "<svg" in page.text
    # The password form is still the first form of the page.
    assert {"username", "password"} <= set(forms(page.text)[0].fields)


def test_login_page_without_providers_has_no_social_buttons(make_tenant):
    tenant = make_tenant()
    page = start_sign_in(tenant).page
    assert "Continue with" not in page.text and "social-buttons" not in page.text


@pytest.mark.parametrize("slug", ["google", "github"])
def test_first_sign_in_creates_the_user_with_default_roles(social_tenant, fakes, fake_google, fake_github, slug):
    options = {"default_roles": ["ROLE_VIEWER"]}
    tenant = social_tenant(google=options, github=options, user_roles=[])
    # The local alice has another address, so the upstream account is somebody new.
    user_service.update_user("web", "alice", email="alice.local@example.com")
    flight = social_sign_in(tenant, slug, fakes)
    claims = flight.id_token()

    new_user = db.session.scalar(sa.select(User).where(User.sub == claims["sub"]))
    assert new_user is not None and new_user.username != "alice"
    assert new_user.username == {"google": "alice-2", "github": "alice-gh"}[slug]
    assert new_user.password_hash is None
    assert new_user.email == "alice@example.com" and new_user.email_verified
    assert (new_user.first_name, new_user.last_name) == ("Alice", "Liddell")
    assert claims["amr"] == ["fed"] and claims["idp"] == slug
    assert claims["roles"] == ["ROLE_VIEWER"]
    assert claims["email"] == "alice@example.com" and claims["email_verified"] is True
    (identity,) = identities.list_identities(new_user)
    assert identity.provider.slug == slug
    assert identity.subject == {"google": "google-1001", "github": "4242"}[slug]
    kinds = [e.kind for e in db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]
    assert kinds[-2:] == ["identity_linked", "login_succeeded"]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.kind == "login_succeeded"))
    assert event.detail == {"method": "fed", "idp": slug, "created": True}


def test_the_upstream_request_carries_state_nonce_and_pkce(social_tenant, fakes, fake_google, fake_github):
    tenant = social_tenant()
    user_service.update_user("web", "alice", email="alice.local@example.com")
    social_sign_in(tenant, "google", fakes).exchange()
    (authorize,) = fake_google.requests_to("/authorize")
    assert authorize["client_id"] == UPSTREAM_CLIENT_ID
    assert authorize["redirect_uri"] == f"{tenant.url}/login/google/callback"
    assert authorize["scope"] == "openid email profile"
    assert authorize["state"] and authorize["nonce"] and authorize["code_challenge_method"] == "S256"
    (token_request,) = fake_google.requests_to("/token")
    assert _s256(token_request["code_verifier"]) == authorize["code_challenge"]
    assert "client_secret" not in token_request  # client_secret_basic, as discovery allows

    fake_github.emails = [{"email": "alice@github.example", "primary": True, "verified": True}]
    social_sign_in(tenant, "github", fakes).exchange()
    (authorize,) = fake_github.requests_to("/login/oauth/authorize")
    assert authorize["redirect_uri"] == f"{tenant.url}/login/github/callback"
    assert authorize["scope"] == "read:user user:email" and authorize["code_challenge_method"] == "S256"
    (token_request,) = fake_github.requests_to("/login/oauth/access_token")
    assert token_request["client_secret"] and _s256(token_request["code_verifier"]) == authorize["code_challenge"]


@pytest.mark.parametrize("slug", ["google", "github"])
def test_returning_sign_in_finds_the_linked_user(social_tenant, fakes, slug):
    tenant = social_tenant(google={"default_roles": ["ROLE_VIEWER"]}, github={"default_roles": ["ROLE_VIEWER"]})
    user_service.update_user("web", "alice", email="alice.local@example.com")
    first = social_sign_in(tenant, slug, fakes).id_token()
    user_service.assign_role("web", "alice-2" if slug == "google" else "alice-gh", "ROLE_ADMIN")
    again = social_sign_in(tenant, slug, fakes).id_token()
    assert again["sub"] == first["sub"]
    assert again["roles"] == ["ROLE_ADMIN", "ROLE_VIEWER"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LinkedIdentity)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 2


def test_google_sign_in_ends_with_a_token_for_the_users_roles(social_tenant, fakes):
    """Done when: a client with Google and GitHub lets a user sign in with either and get their roles."""
    tenant = social_tenant(google={"link_verified_email": True}, github={"link_verified_email": True})
    google = social_sign_in(tenant, "google", fakes)
    token = google.exchange()
    id_claims = verify_jwt(token["id_token"], tenant.url, tenant.client_id)
    access = verify_jwt(token["access_token"], tenant.url, tenant.client_id, typ="at+jwt")
    assert id_claims["sub"] == tenant.user.sub == access["sub"]
    assert id_claims["roles"] == access["roles"] == ["ROLE_ADMIN", "ROLE_VIEWER"]
    assert id_claims["amr"] == ["fed"] and id_claims["idp"] == "google"
    github = social_sign_in(tenant, "github", fakes).id_token()
    assert github["sub"] == tenant.user.sub and github["idp"] == "github"
    # The refresh token keeps how the user signed in.
    refreshed = google.session.refresh_token(f"{tenant.url}/oauth2/token", refresh_token=token["refresh_token"])
    assert verify_jwt(refreshed["id_token"], tenant.url, tenant.client_id)["idp"] == "google"
