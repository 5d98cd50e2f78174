"""Token services: lookups never write, replay handling is explicit, the deny-list is idempotent,
and our access JWTs are verified by joserfc against published keys only."""

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import ECKey

from app.extensions import db
from app.models import AuditEvent, RefreshToken, RevokedJti
from app.services import tokens
from app.services.keys import keyring


@pytest.fixture
def web(app, make_client, make_user):
    with app.test_request_context():
        client, _ = make_client(client_id="web")
        user = make_user("web")
        yield client, user


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _issue(client, user) -> tuple[dict, object]:
    """A code exchanged for tokens, as the code grant does it, committed."""
    code = tokens.new_code()
    row = tokens.store_code(code, client, user, "", "openid", None, None, None, None)
    db.session.flush()
    assert tokens.consume_code(row)
    token = tokens.generate(client, user, "openid", include_refresh_token=True)
    tokens.save(token, client, user, code=row)
    db.session.commit()
    return token, code


def test_deny_is_insert_or_ignore(web):
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert tokens.deny("jti-1", expires) is True
    assert tokens.deny("jti-1", expires) is False  # no unique violation, and the caller learns it
    db.session.commit()
    assert _count(RevokedJti) == 1
    assert tokens.is_denied("jti-1")


def test_finding_a_used_code_writes_nothing_until_the_grant_revokes(web):
    client, user = web
    token, code = _issue(client, user)
    events = _count(AuditEvent)
    row = tokens.find_code(code, client)
    assert row is not None and row.used_at is not None
    assert not db.session.new and not db.session.dirty
    db.session.rollback()
    assert _count(AuditEvent) == events and _count(RevokedJti) == 0
    # The grant's explicit call revokes what the code issued.
    tokens.revoke_replayed(tokens.find_code(code, client), client)
    db.session.commit()
    assert tokens.inspect(token["access_token"]) is None
    assert tokens.inspect(token["refresh_token"]) is None
    assert db.session.scalar(sa.select(AuditEvent.kind).order_by(AuditEvent.id.desc()).limit(1)) == (
        "authorization_code_replayed"
    )


def test_finding_a_rotated_refresh_token_writes_nothing_until_reuse_is_reported(web):
    client, user = web
    token, _ = _issue(client, user)
    row = tokens.find_refresh_token(token["refresh_token"], client)
    assert tokens.rotate_refresh_token(row)
    assert not tokens.rotate_refresh_token(row)  # the loser of a race learns it
    db.session.commit()
    db.session.expire_all()  # as a new request would see it
    again = tokens.find_refresh_token(token["refresh_token"], client)
    assert tokens.is_rotated(again)
    assert not db.session.new and not db.session.dirty
    assert tokens.report_reuse(again, client) == 1  # the family's one token, now revoked
    db.session.commit()
    assert db.session.scalar(sa.select(RefreshToken.revoked_at).where(RefreshToken.id == again.id)) is not None
    assert tokens.inspect(token["access_token"]) is None  # its JWT access token is denied
    assert db.session.scalar(sa.select(AuditEvent.kind).order_by(AuditEvent.id.desc()).limit(1)) == (
        "refresh_token_reused"
    )


def test_an_expired_unused_refresh_token_is_not_found(web):
    client, user = web
    token, _ = _issue(client, user)
    db.session.execute(sa.update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    assert tokens.find_refresh_token(token["refresh_token"], client) is None


def _forge(claims: dict, header: dict | None = None, key=None) -> str:
    signing = keyring().signing_key("RS256")
    header = {"alg": "RS256", "typ": "at+jwt", "kid": signing.kid, **(header or {})}
    return jwt.encode(header, claims, key or signing.key, algorithms=[header["alg"]])


def _claims(client, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": tokens.claims.issuer(), "sub": "web", "aud": "web", "exp": now + 60, "iat": now,
        "jti": "j-1", "client_id": client.client_id, "scope": "",
    }  # fmt: skip
    return {**claims, **overrides}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_decode_access_jwt_accepts_our_own(web):
    client, _ = web
    assert tokens.decode_access_jwt(_forge(_claims(client)))["client_id"] == "web"


@pytest.mark.parametrize(
    "case",
    ["id_token_typ", "unknown_kid", "other_key", "expired", "wrong_iss", "no_exp", "alg_none", "nested_header"],
)
def test_decode_access_jwt_refuses(web, case):
    client, _ = web
    claims = _claims(client)
    if case == "id_token_typ":
        value = _forge(claims, {"typ": "JWT"})
    elif case == "unknown_kid":
        value = _forge(claims, {"kid": "not-ours"})
    elif case == "other_key":
        value = _forge(claims, {"alg": "ES256"}, key=ECKey.generate_key("P-256"))
    elif case == "expired":
        value = _forge({**claims, "exp": int(time.time()) - tokens.LEEWAY - 5})
    elif case == "wrong_iss":
        value = _forge({**claims, "iss": "https://elsewhere.example"})
    elif case == "no_exp":
        value = _forge({k: v for k, v in claims.items() if k != "exp"})
    elif case == "alg_none":
        body = _forge(claims).split(".")[1]
        value = _b64(b'{"alg":"none","typ":"at+jwt"}') + f".{body}."
    else:
        value = _b64(b"[" * 5000 + b"]" * 5000) + ".e30.c2ln"
    assert tokens.decode_access_jwt(value) is None
