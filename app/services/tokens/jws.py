"""Compact JWS signing: joserfc's algorithms and checks, the protected header encoded once per key.

`joserfc.jwt.encode` checks and encodes the same header, builds a registry and checks the key
on every call: about a third of an ES256 signature's cost. Here that happens once per key id,
alg and typ; each token then costs its claims' JSON and the signature, framed as joserfc frames
it (tests/unit/test_jws.py compares the two byte for byte).
"""

import base64
import json
from typing import Any

from joserfc.jws import JWSRegistry

# (kid, alg, typ) -> (the key, the header segment, joserfc's algorithm): a few entries per signing key.
_PREPARED: dict[tuple[str, str, str], tuple[Any, bytes, Any]] = {}


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _prepared(kid: str, key, alg: str, typ: str) -> tuple[bytes, Any]:
    entry = _PREPARED.get((kid, alg, typ))
    if entry is None or entry[0] is not key:
        # The header as joserfc.jwt.encode writes it ("typ" first), checked as it checks it.
        header = {"typ": typ, "alg": alg, "kid": kid}
        registry = JWSRegistry(algorithms=[alg])
        registry.check_header(header)
        algorithm = registry.get_alg(alg)
        algorithm.check_key(key)
        segment = _b64(json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode("ascii"))
        entry = _PREPARED[(kid, alg, typ)] = (key, segment, algorithm)
    return entry[1], entry[2]


def sign(claims: dict, kid: str, key, alg: str, typ: str) -> str:
    """The compact JWS of `claims`, signed with the joserfc `key` named `kid`."""
    header, algorithm = _prepared(kid, key, alg, typ)
    signing_input = header + b"." + _b64(json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode())
    return (signing_input + b"." + _b64(algorithm.sign(signing_input, key))).decode()
