"""Password hashers for the DOT peer.

- `BenchBCryptPasswordHasher`: user passwords, plain bcrypt like AuthGate, with the cost taken
  from DOT_BCRYPT_ROUNDS (default 12, AuthGate's default).
- `SHA256ClientSecretHasher`: client secrets only (OAUTH2_PROVIDER["CLIENT_SECRET_HASHER"]):
  unsalted SHA-256 compared in constant time, the same class of check AuthGate does for a
  high-entropy generated secret. Django's default (PBKDF2, ~1 million iterations) would cost
  hundreds of milliseconds on every client-authenticated request and measure the hash, not DOT.
"""

import hashlib
import hmac
import os

from django.contrib.auth.hashers import BasePasswordHasher, BCryptPasswordHasher, mask_hash


class BenchBCryptPasswordHasher(BCryptPasswordHasher):
    rounds = int(os.environ.get("DOT_BCRYPT_ROUNDS", "12"))


class SHA256ClientSecretHasher(BasePasswordHasher):
    algorithm = "sha256_client_secret"

    def salt(self):
        return ""

    def encode(self, password, salt):
        return f"{self.algorithm}$${hashlib.sha256(password.encode()).hexdigest()}"

    def decode(self, encoded):
        algorithm, _empty, digest = encoded.split("$", 2)
        return {"algorithm": algorithm, "hash": digest, "salt": ""}

    def verify(self, password, encoded):
        return hmac.compare_digest(encoded.encode(), self.encode(password, "").encode())

    def safe_summary(self, encoded):
        return {"algorithm": self.algorithm, "hash": mask_hash(self.decode(encoded)["hash"])}

    def must_update(self, encoded):
        return False

    def harden_runtime(self, password, encoded):
        pass
