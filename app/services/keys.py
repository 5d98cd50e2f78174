"""Signing keys: generation, rotation without breaking relying parties, and the per-process key ring."""

import json
import logging
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, Key, KeyParameters, OKPKey, RSAKey, import_key

from app.capabilities import SIGNING_ALGS
from app.extensions import db
from app.models import SigningKey
from app.runtime import runtime
from app.services import ValidationError, transaction
from app.services.clients import ACCESS_TOKEN_LIFETIME
from app.services.crypto import decrypt, encrypt

# RFC 9864 renames EdDSA to Ed25519; AuthGate keeps publishing EdDSA until relying parties catch up.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

log = logging.getLogger("authgate.keys")
PURPOSE = b"signing-keys"
# A retired key stays published until every token it signed has expired: the longest
# token lifetime (24 h) plus a margin for clock skew.
RETENTION = timedelta(seconds=ACCESS_TOKEN_LIFETIME[1] + 300)


def _now() -> datetime:
    return datetime.now(UTC)


def generate_jwk(alg: str):
    params: KeyParameters = {"alg": alg, "use": "sig"}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, auto_kid=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, auto_kid=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", parameters=params, auto_kid=True)
    raise ValidationError("alg", f"must be one of {', '.join(SIGNING_ALGS)}")


def state_of(key, now: datetime | None = None) -> str:
    """Return next, active, retired (still published) or expired (no longer published)."""
    now = now or _now()
    if now < key.activates_at:
        return "next"
    if key.retired_at is None or now < key.retired_at:
        return "active"
    if now < key.retired_at + RETENTION:
        return "retired"
    return "expired"


def _new_key(alg: str, activates_at: datetime) -> SigningKey:
    jwk = generate_jwk(alg)
    secret_key = current_app.config["SECRET_KEY"]
    row = SigningKey(
        kid=jwk.kid,
        alg=alg,
        public_jwk=jwk.as_dict(private=False),
        private_jwk_encrypted=encrypt(json.dumps(jwk.as_dict(private=True)), secret_key, PURPOSE),
        activates_at=activates_at,
    )
    db.session.add(row)
    return row


def _keys_of(alg: str) -> list[SigningKey]:
    query = sa.select(SigningKey).where(SigningKey.alg == alg).order_by(SigningKey.activates_at)
    return list(db.session.scalars(query))


def ensure_keys() -> list[SigningKey]:
    """Give every algorithm an active key; return the keys made."""
    made = []
    now = _now()
    with transaction():
        for alg in SIGNING_ALGS:
            if not any(state_of(k, now) in ("active", "next") for k in _keys_of(alg)):
                made.append(_new_key(alg, now))
    return made


def rotate(alg: str | None = None, immediately: bool = False) -> list[SigningKey]:
    """Publish a new key per algorithm that signs once every JWKS cache has seen it.

    With `immediately`, the new key signs at once (the emergency path); the old one
    stays published so tokens it signed still verify.
    """
    algs = [alg] if alg else list(SIGNING_ALGS)
    if alg and alg not in SIGNING_ALGS:
        raise ValidationError("alg", f"must be one of {', '.join(SIGNING_ALGS)}")
    now = _now()
    # Every worker re-reads keys within KEY_REFRESH_SECONDS and then serves the new key in JWKS;
    # a relying party's cached JWKS is at most JWKS_MAX_AGE old after that.
    config = current_app.config
    delay = timedelta(seconds=config["AUTHGATE_JWKS_MAX_AGE"] + config["AUTHGATE_KEY_REFRESH_SECONDS"])
    made = []
    with transaction():
        for name in algs:
            keys = _keys_of(name)
            pending = [k for k in keys if state_of(k, now) == "next"]
            if pending and not immediately:
                raise ValidationError(
                    "alg",
                    f"a {name} rotation is already pending: key {pending[-1].kid} becomes active "
                    f"at {pending[-1].activates_at:%Y-%m-%d %H:%M:%S} UTC (use --now to force)",
                )
            active = [k for k in keys if state_of(k, now) == "active"]
            activates_at = now if immediately or not active else now + delay
            for key in active:
                key.retired_at = activates_at
            for key in pending:
                # It never signed anything, so nothing needs it published.
                db.session.delete(key)
            made.append(_new_key(name, activates_at))
    keyring().invalidate()
    return made


def list_keys() -> list[SigningKey]:
    query = sa.select(SigningKey).order_by(SigningKey.alg, SigningKey.activates_at.desc())
    return list(db.session.scalars(query))


def to_dict(key: SigningKey, now: datetime | None = None) -> dict:
    return {
        "kid": key.kid,
        "alg": key.alg,
        "state": state_of(key, now),
        "created_at": key.created_at.isoformat(),
        "activates_at": key.activates_at.isoformat(),
        "retired_at": key.retired_at.isoformat() if key.retired_at else None,
    }


# --- the per-process key ring -----------------------------------------------------------


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    key: Key  # the joserfc private key, parsed once
    public_jwk: dict
    activates_at: datetime
    retired_at: datetime | None


class KeyRing:
    """Keys parsed once per process and re-read from the database every few seconds.

    Another process (the CLI, another worker) may rotate; the refresh interval is shorter
    than the JWKS max-age, so every worker knows a `next` key before it starts signing.
    """

    def __init__(self, refresh_seconds: int):
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._parsed: dict[str, LoadedKey] = {}
        self._keys: list[LoadedKey] = []
        self._loaded_at = float("-inf")
        # Bumped whenever the keys may have changed, so copies of the JWKS know they are stale.
        self.generation = 0

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")
        self.generation += 1

    def keys(self) -> list[LoadedKey]:
        if time.monotonic() - self._loaded_at >= self.refresh_seconds:
            with self._lock:
                if time.monotonic() - self._loaded_at >= self.refresh_seconds:
                    self._reload()
        return self._keys

    def _reload(self) -> None:
        """Re-read the keys; while the database is unreachable, keep signing with the ones we have."""
        try:
            self._load()
        except sa.exc.SQLAlchemyError:
            db.session.rollback()
            if not self._keys:
                raise
            # Degraded: try again in a second, and meanwhile serve the keys read before.
            self._loaded_at = time.monotonic() - self.refresh_seconds + 1
            log.warning("signing keys could not be re-read; using the %d loaded before", len(self._keys))

    def _load(self) -> None:
        secret_key = current_app.config["SECRET_KEY"]
        rows = db.session.execute(
            sa.select(
                SigningKey.kid,
                SigningKey.alg,
                SigningKey.public_jwk,
                SigningKey.private_jwk_encrypted,
                SigningKey.activates_at,
                SigningKey.retired_at,
            ).order_by(SigningKey.activates_at)
        ).all()
        loaded = []
        for kid, alg, public_jwk, encrypted, activates_at, retired_at in rows:
            cached = self._parsed.get(kid)
            if cached is None:
                private = import_key(json.loads(decrypt(encrypted, secret_key, PURPOSE)))
                cached = LoadedKey(kid, alg, private, public_jwk, activates_at, retired_at)
            elif cached.retired_at != retired_at or cached.activates_at != activates_at:
                cached = LoadedKey(kid, alg, cached.key, public_jwk, activates_at, retired_at)
            loaded.append(cached)
        if [(k.kid, k.retired_at) for k in loaded] != [(k.kid, k.retired_at) for k in self._keys]:
            self.generation += 1
        self._parsed = {k.kid: k for k in loaded}
        self._keys = loaded
        self._loaded_at = time.monotonic()

    def signing_key(self, alg: str) -> LoadedKey:
        """Return the key that signs for `alg` now."""
        now = _now()
        active = [k for k in self.keys() if k.alg == alg and state_of(k, now) == "active"]
        if not active:
            raise RuntimeError(f"no active {alg} signing key: run `flask --app wsgi init`")
        return active[-1]

    def published(self) -> list[LoadedKey]:
        """Every key that may still verify a live token, or will soon sign one."""
        now = _now()
        return [k for k in self.keys() if state_of(k, now) != "expired"]

    def by_kid(self, kid: str) -> LoadedKey | None:
        """Find a key by id, re-reading at most once a second for a kid not seen yet."""
        key = self._parsed.get(kid)
        if key is None and time.monotonic() - self._loaded_at > 1:
            self.invalidate()
            self.keys()
            key = self._parsed.get(kid)
        return key


def keyring() -> KeyRing:
    """The key ring of the current app."""
    return runtime().keyring
