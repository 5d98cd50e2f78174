"""Secrets, hashes and encryption at rest."""

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Recognisable prefixes make a leaked value identifiable (and greppable by secret scanners).
CLIENT_SECRET_PREFIX = "agcs_"


def new_secret(prefix: str, nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def matches_hash(value: str, expected_hex: str | None) -> bool:
    """Compare a high-entropy secret with its stored SHA-256 in constant time."""
    if not expected_hex or not isinstance(value, str):
        return False
    return hmac.compare_digest(sha256_hex(value), expected_hex)


def keyed_hash(value: str, secret_key: str, purpose: bytes) -> str:
    """HMAC-SHA256 of a value under a key derived from the secret key: for secrets too short to be
    safe as a plain hash (recovery codes), so a copy of the database alone cannot test guesses."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"authgate-hmac:" + purpose)
    return hmac.new(hkdf.derive(secret_key.encode()), value.encode(), hashlib.sha256).hexdigest()


class DecryptionError(RuntimeError):
    pass


def _fernet(secret_key: str, purpose: bytes) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"authgate:" + purpose)
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(secret_key.encode())))


def encrypt(plaintext: str, secret_key: str, purpose: bytes) -> str:
    return _fernet(secret_key, purpose).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str, secret_key: str, purpose: bytes) -> str:
    try:
        return _fernet(secret_key, purpose).decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionError("cannot decrypt a stored secret: was AUTHGATE_SECRET_KEY changed?") from None
