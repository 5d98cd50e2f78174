"""Our compact JWS framing (app/services/tokens/jws.py) writes what joserfc's jwt.encode writes.

It calls joserfc's registry and algorithm objects directly, skipping `jwt.encode`; if an upgrade
of joserfc changes how a token is framed or checked, these fail.
"""

import pytest
from joserfc import jwt
from joserfc.errors import InvalidKeyTypeError, UnsupportedAlgorithmError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from app.services.tokens import jws

KEYS = {
    "ES256": lambda: ECKey.generate_key("P-256", auto_kid=True),
    "RS256": lambda: RSAKey.generate_key(2048, auto_kid=True),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519", auto_kid=True),
}
CLAIMS = {"iss": "https://auth.example.com", "sub": "Zoë", "aud": ["a", "b"], "exp": 2, "iat": 1, "n": None, "t": True}


@pytest.mark.parametrize("alg", list(KEYS))
@pytest.mark.parametrize("typ", ["JWT", "at+jwt"])
def test_tokens_are_framed_as_joserfc_frames_them(alg, typ):
    key = KEYS[alg]()
    ours = jws.sign(dict(CLAIMS), key.kid, key, alg, typ)
    theirs = jwt.encode({"alg": alg, "typ": typ, "kid": key.kid}, dict(CLAIMS), key, algorithms=[alg])
    # Header and payload byte for byte (ECDSA signatures are randomised; joserfc verifies ours).
    assert ours.split(".")[:2] == theirs.split(".")[:2]
    decoded = jwt.decode(ours, key, algorithms=[alg])
    assert decoded.header == {"typ": typ, "alg": alg, "kid": key.kid} and decoded.claims == CLAIMS
    # The header is encoded once per key; a second token reuses it and still verifies.
    again = jws.sign({"sub": "x"}, key.kid, key, alg, typ)
    assert again.split(".")[0] == ours.split(".")[0] and jwt.decode(again, key, algorithms=[alg]).claims == {"sub": "x"}


def test_a_key_of_the_wrong_type_is_refused_as_joserfc_refuses_it():
    with pytest.raises(InvalidKeyTypeError):
        jws.sign({}, "k1", KEYS["RS256"](), "ES256", "JWT")
    with pytest.raises(UnsupportedAlgorithmError):
        jws.sign({}, "k2", KEYS["ES256"](), "XS256", "JWT")


def test_a_new_key_under_a_known_kid_is_checked_and_used():
    first, second = KEYS["ES256"](), KEYS["ES256"]()
    jws.sign({}, "same-kid", first, "ES256", "JWT")
    token = jws.sign({"a": 1}, "same-kid", second, "ES256", "JWT")
    assert jwt.decode(token, second, algorithms=["ES256"]).claims == {"a": 1}
