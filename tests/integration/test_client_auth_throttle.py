"""Failed client authentication at the token, introspection and revocation endpoints is throttled on Redis.

Per (client_id, address) and per address (AUTHGATE_CLIENT_AUTH_FAILURES, ..._ADDRESS_FAILURES, per
AUTHGATE_CLIENT_AUTH_WINDOW): once an allowance is used up the address gets 429 with Retry-After
and an RFC 6749 JSON body, before any secret is checked. Only failures count, and another address
is not affected, so an attacker cannot lock a client out of its own successful requests.
"""

import base64
import json
import secrets
import time
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from joserfc import jws
from joserfc.jwk import ECKey

from app.extensions import db
from app.models import AuditEvent, Client
from tests.integration.helpers import set_up_console, sign_in

ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.9"
PROXY = "10.0.0.1"
TOKEN_URL = "http://localhost:5000/oauth2/token"  # tests.helpers.make_app's issuer
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_CREDENTIALS = {"grant_type": "client_credentials"}

pytestmark = [
    pytest.mark.redis,
    pytest.mark.settings(AUTHGATE_CLIENT_AUTH_FAILURES=3, AUTHGATE_CLIENT_AUTH_ADDRESS_FAILURES=6),
]


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def svc(make_client) -> str:
    """A confidential client_credentials client ("svc", client_secret_basic or _post); returns its secret."""
    _, secret = make_client(
        client_id="svc", grant_types=["client_credentials"], redirect_uris=[],
        token_endpoint_auth_methods=["client_secret_basic", "client_secret_post"],
    )  # fmt: skip
    return secret


def token(http, ip: str, secret: str, client_id: str = "svc", **headers):
    return http.post(
        "/oauth2/token", data=CLIENT_CREDENTIALS, headers={**basic(client_id, secret), **headers},
        environ_base={"REMOTE_ADDR": ip},
    )  # fmt: skip


def assert_invalid_client(response):
    assert response.status_code in (400, 401), (response.status_code, response.get_data()[:300])
    assert response.json["error"] == "invalid_client"


def assert_throttled(response, window: int = 300) -> int:
    """The 429 a throttled address gets; returns its Retry-After."""
    assert response.status_code == 429, (response.status_code, response.get_data()[:300])
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= window
    assert response.mimetype == "application/json"
    assert response.json == {
        "error": "temporarily_unavailable",
        "error_description": f"Too many failed client authentications; try again in {retry_after} seconds.",
    }
    assert response.headers["Cache-Control"] == "no-store"
    # The same response path as every protocol error: a request id and the security headers.
    assert response.headers["X-Request-Id"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return retry_after


def throttle_events() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == "client_auth_throttled")))


def test_wrong_secrets_are_throttled_for_that_address_while_the_right_secret_works_elsewhere(http, svc, monkeypatch):
    for _ in range(3):
        response = token(http, ATTACKER, "wrong")
        assert response.status_code == 401
        assert response.json["error"] == "invalid_client"
    # Throttled until the first failure leaves the window (five minutes by default).
    assert 290 <= assert_throttled(token(http, ATTACKER, "wrong")) <= 300

    # The client itself, from its own address, is not locked out by the attacker's failures.
    response = token(http, ELSEWHERE, svc)
    assert response.status_code == 200, response.json
    assert response.json["access_token"]

    # From the throttled address even the right secret is refused while the throttle lasts: the
    # secret is not checked at all (no hashing for an attacker who is already throttled).
    checked = []
    real_check = Client.check_client_secret
    monkeypatch.setattr(Client, "check_client_secret", lambda self, s: checked.append(s) or real_check(self, s))
    assert_throttled(token(http, ATTACKER, svc))
    assert_throttled(http.post("/oauth2/token", data={**CLIENT_CREDENTIALS, "client_id": "svc", "client_secret": svc},
                               environ_base={"REMOTE_ADDR": ATTACKER}))  # fmt: skip
    assert checked == []

    # One audit event, when the allowance was used up; refusals after it add none.
    (event,) = throttle_events()
    assert event.ip == ATTACKER
    assert event.detail["client_id"] == "svc"


def test_successes_do_not_count(http, svc):
    for _ in range(20):
        assert token(http, ATTACKER, svc).status_code == 200
    for _ in range(3):
        assert token(http, ATTACKER, "wrong").status_code == 401
    assert_throttled(token(http, ATTACKER, "wrong"))


def test_spraying_client_ids_from_one_address_is_throttled_by_the_address_limit(http, svc):
    # Six failures, each naming another client_id or none (so none reaches its own limit of three).
    sprays = [
        {"headers": basic("ghost-1", "x")},
        {"headers": basic("ghost-2", "x")},
        {"data": {"client_id": "ghost-3", "client_secret": "x"}},
        {"data": {"client_id": "ghost-4"}},  # no secret: no method applies, so it names none
        {"data": {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "not.a.jwt"}},  # names none
        {"headers": basic("svc", "wrong")},
    ]
    for spray in sprays:
        data = {**CLIENT_CREDENTIALS, **spray.get("data", {})}
        assert_invalid_client(
            http.post("/oauth2/token", data=data, headers=spray.get("headers"), environ_base={"REMOTE_ADDR": ATTACKER})
        )
    assert_throttled(token(http, ATTACKER, "x", client_id="ghost-7"))
    assert_throttled(token(http, ATTACKER, svc))
    # A request that names no client at all is refused by the address's throttle too.
    assert_throttled(http.post("/oauth2/token", data=CLIENT_CREDENTIALS, environ_base={"REMOTE_ADDR": ATTACKER}))
    assert token(http, ELSEWHERE, svc).status_code == 200
    (event,) = throttle_events()
    assert event.ip == ATTACKER and event.detail["client_id"] == "svc"


@pytest.mark.parametrize("path", ["/oauth2/introspect", "/oauth2/revoke"])
def test_introspection_and_revocation_are_throttled_the_same_way(http, svc, path):
    def call(ip: str, secret: str):
        form = {"token": "agat_unknown", "client_id": "svc", "client_secret": secret}
        return http.post(path, data=form, environ_base={"REMOTE_ADDR": ip})

    for _ in range(3):
        assert_invalid_client(call(ATTACKER, "wrong"))
    assert_throttled(call(ATTACKER, "wrong"))
    assert_throttled(call(ATTACKER, svc))
    # Failures at one endpoint count at the others: the secret is the same.
    assert_throttled(token(http, ATTACKER, svc))
    response = call(ELSEWHERE, svc)
    assert response.status_code == 200
    if path == "/oauth2/introspect":
        assert response.json == {"active": False}


@pytest.fixture
def signer(make_client) -> ECKey:
    """A client_credentials client ("signer") that authenticates with private_key_jwt; returns its key."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    make_client(client_id="signer", token_endpoint_auth_methods=["private_key_jwt"], grant_types=["client_credentials"],
                jwks={"keys": [key.as_dict(private=False)]}, redirect_uris=[])  # fmt: skip
    return key


def with_assertion(http, ip: str, assertion: str):
    form = {**CLIENT_CREDENTIALS, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    return http.post("/oauth2/token", data=form, environ_base={"REMOTE_ADDR": ip})


def signed(key: ECKey, **claims) -> str:
    """An assertion for "signer" signed with `key`, with `claims` overriding the usual ones."""
    claims = {"iss": "signer", "sub": "signer", "aud": TOKEN_URL, "exp": int(time.time()) + 600,
              "jti": secrets.token_urlsafe(), **claims}  # fmt: skip
    return jws.serialize_compact({"alg": "ES256"}, json.dumps(claims).encode(), key, ["ES256"])


def test_bad_assertions_count_against_the_client_they_name(http, signer):
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    for _ in range(3):
        assert_invalid_client(with_assertion(http, ATTACKER, signed(stranger)))
    assert_throttled(with_assertion(http, ATTACKER, signed(signer)))
    assert with_assertion(http, ELSEWHERE, signed(signer)).status_code == 200
    (event,) = throttle_events()
    assert event.detail["client_id"] == "signer"


def test_an_assertion_whose_sub_holds_a_lone_surrogate_names_no_client(http, signer):
    # json.dumps writes "\ud800", which json.loads turns back into a string no database can be asked about.
    assertion = signed(signer, sub="signer\ud800", iss="signer\ud800")
    for _ in range(6):
        assert_invalid_client(with_assertion(http, ATTACKER, assertion))
    assert_throttled(with_assertion(http, ATTACKER, assertion))
    (event,) = throttle_events()
    assert event.detail["client_id"] == ""  # the address's allowance: no client was named


def test_an_assertion_whose_jti_holds_a_lone_surrogate_is_a_failure_of_its_client(http, signer):
    for _ in range(3):
        assert_invalid_client(with_assertion(http, ATTACKER, signed(signer, jti="j\ud800")))
    assert_throttled(with_assertion(http, ATTACKER, signed(signer)))


def test_a_decoy_credential_does_not_shield_the_client_under_attack(http, svc, make_client):
    _, decoy_secret = make_client(client_id="decoy", grant_types=["client_credentials"], redirect_uris=[])
    # Authlib tries the Basic header (the decoy, wrong secret) and then the form (svc, a guess).
    for _ in range(3):
        response = http.post(
            "/oauth2/token", data={**CLIENT_CREDENTIALS, "client_id": "svc", "client_secret": "guess"},
            headers=basic("decoy", "wrong"), environ_base={"REMOTE_ADDR": ATTACKER},
        )  # fmt: skip
        assert_invalid_client(response)
    # Three failures each for svc and decoy: the address limit (six) is used up too.
    assert_throttled(token(http, ATTACKER, svc))
    assert_throttled(token(http, ATTACKER, decoy_secret, client_id="decoy"))
    assert {event.detail["client_id"] for event in throttle_events()} == {"svc", "decoy"}


def test_a_forged_x_forwarded_for_is_ignored_without_trusted_proxies(http, svc):
    for n in range(3):
        assert token(http, ATTACKER, "wrong", **{"X-Forwarded-For": f"192.0.2.{n}"}).status_code == 401
    # Counted against the peer: a new forged address does not start a new allowance.
    assert_throttled(token(http, ATTACKER, svc, **{"X-Forwarded-For": "192.0.2.99"}))
    assert throttle_events()[0].ip == ATTACKER


@pytest.mark.settings(
    AUTHGATE_TRUSTED_PROXIES=1, AUTHGATE_CLIENT_AUTH_FAILURES=3, AUTHGATE_CLIENT_AUTH_ADDRESS_FAILURES=6
)
def test_x_forwarded_for_is_honoured_from_a_trusted_proxy(http, svc):
    behind_proxy = {"X-Forwarded-For": ATTACKER}
    for _ in range(3):
        assert token(http, PROXY, "wrong", **behind_proxy).status_code == 401
    assert_throttled(token(http, PROXY, svc, **behind_proxy))
    # Another client behind the same proxy is its own address.
    assert token(http, PROXY, svc, **{"X-Forwarded-For": ELSEWHERE}).status_code == 200
    assert throttle_events()[0].ip == ATTACKER


@pytest.mark.settings(
    AUTHGATE_CLIENT_AUTH_WINDOW=1, AUTHGATE_CLIENT_AUTH_FAILURES=2, AUTHGATE_CLIENT_AUTH_ADDRESS_FAILURES=6
)
def test_the_allowance_comes_back_after_the_window(http, svc):
    for _ in range(2):
        assert token(http, ATTACKER, "wrong").status_code == 401
    retry_after = assert_throttled(token(http, ATTACKER, svc), window=1)
    time.sleep(retry_after + 0.1)
    assert token(http, ATTACKER, svc).status_code == 200
    for _ in range(2):
        assert token(http, ATTACKER, "wrong").status_code == 401
    assert_throttled(token(http, ATTACKER, "wrong"), window=1)


def test_the_consoles_in_process_code_redemption_is_not_throttled(app, runner, client):
    set_up_console(app, runner)
    for n in range(6):  # from the test client's own address
        assert_invalid_client(client.post("/oauth2/token", data=CLIENT_CREDENTIALS, headers=basic(f"ghost-{n}", "x")))
    assert_throttled(client.post("/oauth2/token", data=CLIENT_CREDENTIALS, headers=basic("ghost-7", "x")))
    # The console redeems its own sign-in's code inside the server, as its public client: not a
    # client authentication anyone could brute-force, so the address's throttle does not apply.
    response = sign_in(client)
    assert response.status_code == 200
    assert response.request.path == "/admin/"


@pytest.mark.parametrize(
    "client_id",
    [pytest.param("gh%00st", id="NUL"), pytest.param("%C3%A9%F0%9F%94%91", id="non-ASCII"),
     pytest.param("a" * 5000, id="huge")],
)  # fmt: skip
def test_hostile_client_ids_are_counted_and_audited(http, client_id):
    for _ in range(3):
        assert token(http, ATTACKER, "x", client_id=client_id).status_code == 401
    assert_throttled(token(http, ATTACKER, "x", client_id=client_id))
    (event,) = throttle_events()
    assert event.detail["client_id"] == unquote(client_id)[:128]
