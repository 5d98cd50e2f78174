"""private_key_jwt at the token endpoint with every assertion algorithm discovery advertises."""

import pytest
import requests
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc.jwk import ECKey, OKPKey, RSAKey

from app.capabilities import ASSERTION_ALGS

KEYS = {
    "RS256": lambda: RSAKey.generate_key(2048, auto_kid=True),
    "PS256": lambda: RSAKey.generate_key(2048, auto_kid=True),
    "ES256": lambda: ECKey.generate_key("P-256", auto_kid=True),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519", auto_kid=True),
}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def signer(live, make_client):
    """A client_credentials client that authenticates with private_key_jwt; returns a function
    registering it with the public half of a new key for `alg`, and returning that key."""

    def register(alg: str):
        key = KEYS[alg]()
        make_client(
            client_id="signer", token_endpoint_auth_methods=["private_key_jwt"], grant_types=["client_credentials"],
            redirect_uris=[], scopes="api", jwks={"keys": [{**key.as_dict(private=False), "alg": alg}]},
        )  # fmt: skip
        return key

    return register


def _token_request(url: str, key, alg: str) -> requests.Response:
    assertion = private_key_jwt_sign(key, client_id="signer", token_endpoint=f"{url}/oauth2/token", alg=alg)
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    return requests.post(f"{url}/oauth2/token", data=data, timeout=5)


def test_every_advertised_assertion_algorithm_is_tested(live):
    advertised = requests.get(f"{live.url}/.well-known/openid-configuration", timeout=5).json()
    assert advertised["token_endpoint_auth_signing_alg_values_supported"] == list(ASSERTION_ALGS) == list(KEYS)


@pytest.mark.parametrize("alg", list(KEYS))
def test_a_client_signs_its_assertion_with_any_advertised_algorithm(live, signer, alg):
    key = signer(alg)
    response = _token_request(live.url, key, alg)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]
    assert response.json()["token_type"] == "Bearer"


def test_an_assertion_signed_with_an_unregistered_key_is_refused(live, signer):
    signer("ES256")
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    response = _token_request(live.url, stranger, "ES256")
    # 400, as for every invalid_client without an Authorization header (RFC 6749 5.2: 401 is for those).
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()
