"""Who an upstream account signs in as (app/services/social.py), without any HTTP."""

import time

import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from app.extensions import db
from app.models import LinkedIdentity, User
from app.runtime import runtime
from app.services import identities, idps, social, upstream
from app.services import users as user_service
from app.services.upstream import Profile, UpstreamError


@pytest.fixture
def web(make_client, make_role):
    client, _ = make_client(client_id="web")
    make_role("web", "ROLE_VIEWER")
    return client


def google(**fields):
    fields.setdefault("upstream_client_id", "upstream-id")
    fields.setdefault("client_secret", "upstream-secret")
    return idps.create_provider("web", "google", **fields)


def profile(**fields) -> Profile:
    values = {"subject": "g-1", "email": "alice@example.com", "email_verified": True, "first_name": "Alice"}
    return Profile(**{**values, **fields})


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_first_sign_in_creates_a_user_with_the_default_roles(app, web):
    provider = google(default_roles=["ROLE_VIEWER"])
    outcome = social.resolve(web, provider, profile(last_name="L" * 150))
    user = outcome.user
    assert outcome.created and not outcome.linked
    assert (user.username, user.email, user.email_verified) == ("alice", "alice@example.com", True)
    assert user.password_hash is None and user.last_name == "L" * 100
    assert user_service.role_names(user) == ["ROLE_VIEWER"]
    assert [(i.provider.slug, i.subject) for i in identities.list_identities(user)] == [("google", "g-1")]
    # The second time, the link finds the same user.
    again = social.resolve(web, provider, profile())
    assert again.user.id == user.id and not again.created


@pytest.mark.parametrize(
    ("link_verified_email", "local_verified", "linked"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_auto_link_needs_the_provider_setting_and_a_verified_local_email(
    app, web, make_user, link_verified_email, local_verified, linked
):
    alice = make_user("web", "alice", email="Alice@Example.com", email_verified=local_verified)
    outcome = social.resolve(web, google(link_verified_email=link_verified_email), profile())
    if linked:
        assert outcome.user.id == alice.id and outcome.linked
    else:
        assert outcome.user is None and outcome.link_reason == social.EMAIL_TAKEN
        assert count(LinkedIdentity) == 0
    assert count(User) == 1


@pytest.mark.parametrize("fields", [{"email_verified": False}, {"email": None}])
def test_an_unverified_upstream_email_never_creates_or_links(app, web, make_user, fields):
    make_user("web", "alice", email_verified=True)
    with pytest.raises(social.SignInRefused) as info:
        social.resolve(web, google(link_verified_email=True), profile(**fields))
    assert info.value.reason == "unverified_email"
    assert count(User) == 1 and count(LinkedIdentity) == 0


def test_without_auto_create_an_unknown_person_is_asked_to_link(app, web):
    outcome = social.resolve(web, google(auto_create=False), profile())
    assert outcome.user is None and outcome.link_reason == social.NO_ACCOUNT
    assert count(User) == 0


def test_a_linked_user_that_is_disabled_is_refused(app, web):
    provider = google()
    user = social.resolve(web, provider, profile()).user
    user_service.set_enabled("web", user.username, False)
    with pytest.raises(social.SignInRefused, match="disabled"):
        social.resolve(web, provider, profile())


def test_link_with_password(app, web, make_user):
    provider = google()
    make_user("web", "alice", password="correct horse")
    user, reason = social.link_with_password(web, provider, profile(), "alice", "wrong horse", "127.0.0.1")
    assert (user, reason) == (None, "bad_password") and count(LinkedIdentity) == 0
    user, reason = social.link_with_password(
        web, provider, profile(), "alice@example.com", "correct horse", "127.0.0.1"
    )
    assert reason == "ok" and user.username == "alice"
    assert identities.find_identity(provider, "g-1").user_id == user.id


def test_a_separate_account_has_no_email(app, web, make_user):
    make_user("web", "alice")
    user = social.create_account(web, google(), profile(), with_email=False)
    assert (user.username, user.email, user.email_verified) == ("alice-2", None, False)


def test_the_provider_must_be_the_clients_own(app, web, make_client):
    shop, _ = make_client(client_id="shop")
    with pytest.raises(ValueError, match="another client"):
        social.resolve(shop, google(), profile())


@pytest.mark.parametrize(
    ("username", "email", "taken", "expected"),
    [
        (None, "alice@example.com", [], "alice"),
        (None, "alice@example.com", ["alice", "alice-2"], "alice-3"),
        ("alice-gh", "alice@example.com", ["alice"], "alice-gh"),
        (None, "Ada.Lovelace+work@example.com", [], "Ada.Lovelace+work"),
        ("..dots", None, [], "dots"),
        ("José María", None, [], "Jose.Maria"),
        ("名前", None, [], "user"),
        (None, None, [], "user"),
        ("x" * 80, None, [], "x" * 56),
    ],
)
def test_usernames_are_derived_and_unique_per_client(app, web, make_user, username, email, taken, expected):
    for name in taken:
        make_user("web", name, email=None)
    derived = social.derive_username(web, profile(username=username, email=email))
    assert derived == expected
    assert user_service.check_username(derived) == derived


# --- upstream ID token checks that need no server ------------------------------------------


def _signed(key, **claims):
    now = int(time.time())
    base = {"iss": "https://accounts.google.com", "aud": "upstream-id", "sub": "g-1", "iat": now, "exp": now + 60}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, {**base, **claims}, key)


@pytest.fixture
def key_set(app):
    key = RSAKey.generate_key(2048, auto_kid=True)
    with app.app_context():
        runtime().upstream.put("https://keys.example.com", KeySet([key]), 60)
    return key


@pytest.mark.parametrize("iss", ["https://accounts.google.com", "accounts.google.com"])
def test_google_writes_its_issuer_with_or_without_the_scheme(app, web, key_set, iss):
    document = {"jwks_uri": "https://keys.example.com"}
    claims = upstream.verify_id_token(google(), document, _signed(key_set, iss=iss, nonce="n"), "n")
    assert claims["sub"] == "g-1"


def test_other_issuers_must_match_exactly(app, web, key_set):
    corp = idps.create_provider("web", "oidc", slug="corp", name="Corp", issuer="https://accounts.google.com",
                                upstream_client_id="upstream-id", client_secret="s")  # fmt: skip
    document = {"jwks_uri": "https://keys.example.com"}
    with pytest.raises(UpstreamError) as info:
        upstream.verify_id_token(corp, document, _signed(key_set, iss="accounts.google.com", nonce="n"), "n")
    assert info.value.reason == "wrong_issuer"


def test_hmac_signed_id_tokens_are_refused(app, web, key_set):
    secret = OctKey.import_key("upstream-secret-upstream-secret-32b")
    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": "upstream-id", "sub": "g", "iat": now, "exp": now + 60}
    token = jwt.encode({"alg": "HS256"}, {**claims, "nonce": "n"}, secret)
    document = {"jwks_uri": "https://keys.example.com", "id_token_signing_alg_values_supported": ["HS256", "RS256"]}
    with pytest.raises(UpstreamError) as info:
        upstream.verify_id_token(google(), document, token, "n")
    assert info.value.reason == "invalid_id_token"
