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
from app.services import NotFound, ValidationError, audit, state, transaction
from app.services.clients import ACCESS_TOKEN_LIFETIME
from app.services.crypto import decrypt, encrypt

# RFC 9864 renames EdDSA to Ed25519; AuthGate keeps publishing EdDSA until relying parties catch up.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

log = logging.getLogger("authgate.keys")
PURPOSE = b"signing-keys"
# A retired key stays published until every token it signed has expired: the longest
# token lifetime (24 h) plus a margin for clock skew.
RETENTION = timedelta(seconds=ACCESS_TOKEN_LIFETIME[1] + 300)
# The states in which a key is in the JWKS and verifies tokens; revoked and expired keys are in neither.
PUBLISHED = ("next", "active", "retired")
# server_state rows: the key ring's version, and the settings the serving workers recorded.
KEY_RING = "key_ring"
SETTINGS = "settings"
# What rotation assumes until a serving worker has recorded its settings (the config defaults).
DEFAULT_JWKS_MAX_AGE = 600
DEFAULT_KEY_REFRESH_SECONDS = 30
# How often a worker asks the database whether the keys changed (one indexed single-row read).
VERSION_POLL_SECONDS = 1.0


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
    """Return next, active, retired (still published), expired (no longer published) or revoked."""
    if key.revoked_at is not None:
        return "revoked"
    now = now or _now()
    if now < key.activates_at:
        return "next"
    if key.retired_at is None or now < key.retired_at:
        return "active"
    if now < key.retired_at + RETENTION:
        return "retired"
    return "expired"


def rotation_delay() -> timedelta:
    """How long after publication a new key may sign: the serving workers' JWKS max-age plus refresh.

    The serving workers record their settings (`record_settings`); this process's own settings
    are not used, since the CLI may run with an environment other than the server's. Until a
    server has recorded them, the defaults apply.
    """
    recorded = state.value(SETTINGS) or {}
    max_age = recorded.get("jwks_max_age", DEFAULT_JWKS_MAX_AGE)
    refresh = recorded.get("key_refresh_seconds", DEFAULT_KEY_REFRESH_SECONDS)
    return timedelta(seconds=int(max_age) + int(refresh))


def record_settings() -> bool:
    """Record this (serving) process's JWKS max-age and key refresh interval for rotation times; commits."""
    config = current_app.config
    with transaction():
        return state.put_value(
            SETTINGS,
            {
                "jwks_max_age": config["AUTHGATE_JWKS_MAX_AGE"],
                "key_refresh_seconds": config["AUTHGATE_KEY_REFRESH_SECONDS"],
            },
        )


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
        if made:
            state.bump(KEY_RING)  # running workers sign with them within a second
    return made


def rotate(alg: str | None = None, immediately: bool = False, older_than: timedelta | None = None) -> list[SigningKey]:
    """Publish a new key per algorithm that signs once every JWKS cache has seen it.

    With `immediately`, the new key signs at once (the emergency path); the old one
    stays published so tokens it signed still verify. With `older_than` (automatic rotation),
    only algorithms whose active key is that old and that have no `next` key rotate, and
    none is refused. The key ring's version is bumped first, which serialises rotations across
    processes and nodes: the second of two concurrent ones sees the first one's key.
    """
    algs = [alg] if alg else list(SIGNING_ALGS)
    if alg and alg not in SIGNING_ALGS:
        raise ValidationError("alg", f"must be one of {', '.join(SIGNING_ALGS)}")
    made = []
    with transaction():
        state.bump(KEY_RING)
        now = _now()
        # Every worker re-reads keys within a second of the bump and then serves the new key in
        # JWKS; a relying party's cached JWKS is at most JWKS_MAX_AGE old after that.
        delay = rotation_delay()
        for name in algs:
            keys = _keys_of(name)
            pending = [k for k in keys if state_of(k, now) == "next"]
            active = [k for k in keys if state_of(k, now) == "active"]
            if older_than is not None and (pending or (active and now - active[-1].activates_at < older_than)):
                continue
            if pending and not immediately:
                raise ValidationError(
                    "alg",
                    f"a {name} rotation is already pending: key {pending[-1].kid} becomes active "
                    f"at {pending[-1].activates_at:%Y-%m-%d %H:%M:%S} UTC (use --now to force)",
                )
            activates_at = now if immediately or not active else now + delay
            for key in active:
                key.retired_at = activates_at
            for key in pending:
                # It never signed anything, so nothing needs it published.
                db.session.delete(key)
            made.append(_new_key(name, activates_at))
        if made:
            audit.record(audit.KEYS_ROTATED, kids=",".join(k.kid for k in made), immediately=immediately)
    keyring().invalidate()
    return made


def revoke(kid: str, replace: bool = False) -> tuple[SigningKey, SigningKey | None]:
    """Take a key out of the JWKS and out of verification at once; every token it signed is inactive.

    The key that signs for its algorithm now is revoked only with `replace`: a new key of the
    algorithm then signs at once (as `rotate --now`), since without it nothing could sign.
    Return the revoked key and its replacement, if one was made.
    """
    replacement = None
    with transaction():
        state.bump(KEY_RING)
        key = db.session.scalar(sa.select(SigningKey).where(SigningKey.kid == kid))
        if key is None:
            raise NotFound(f"no signing key {kid}")
        now = _now()
        current = state_of(key, now)
        if current == "revoked":
            raise ValidationError("kid", f"key {kid} was revoked already, at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
        if current == "active" and not replace:
            raise ValidationError(
                "kid",
                f"key {kid} is the {key.alg} key signing now; revoke it with a replacement that signs at once "
                "(--replace) or rotate first",
            )
        key.revoked_at = now
        if current == "active":
            key.retired_at = now
            for pending in [k for k in _keys_of(key.alg) if state_of(k, now) == "next"]:
                db.session.delete(pending)
            replacement = _new_key(key.alg, now)
        audit.record(audit.KEY_REVOKED, kid=kid, alg=key.alg, replacement=replacement.kid if replacement else None)
    keyring().invalidate()
    return key, replacement


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
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
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
    revoked_at: datetime | None = None


class KeyRing:
    """Keys parsed once per process, re-read when the key ring's version changes or every few seconds.

    Another process (the CLI, another worker) may rotate or revoke: both bump the key ring's
    version in the database, which every worker compares with its own at most once a second
    (one single-row read by primary key), so a revocation or `rotate --now` reaches every worker
    within about a second. The full re-read every `refresh_seconds` stays as a backstop.
    """

    def __init__(self, refresh_seconds: int):
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._parsed: dict[str, LoadedKey] = {}
        self._keys: list[LoadedKey] = []
        self._loaded_at = float("-inf")
        self._checked_at = float("-inf")
        self._version: int | None = None
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
        elif time.monotonic() - self._checked_at >= VERSION_POLL_SECONDS:
            with self._lock:
                if time.monotonic() - self._checked_at >= VERSION_POLL_SECONDS:
                    self._check_version()
        return self._keys

    def _check_version(self) -> None:
        """Re-read the keys if another process rotated or revoked since they were loaded."""
        self._checked_at = time.monotonic()
        try:
            # Its own connection: a request that touches no table still opens no session.
            with db.engine.connect() as connection:
                version = connection.scalar(state.VERSION, {"name": KEY_RING}) or 0
        except sa.exc.SQLAlchemyError:
            return  # degraded: keep the keys we have; the full re-read will tell
        if version != self._version:
            self._reload()

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
        # The version first: a change committed after this read is seen at the next poll.
        version = db.session.scalar(state.VERSION, {"name": KEY_RING}) or 0
        rows = db.session.execute(
            sa.select(
                SigningKey.kid,
                SigningKey.alg,
                SigningKey.public_jwk,
                SigningKey.private_jwk_encrypted,
                SigningKey.activates_at,
                SigningKey.retired_at,
                SigningKey.revoked_at,
            ).order_by(SigningKey.activates_at)
        ).all()
        loaded = []
        for kid, alg, public_jwk, encrypted, activates_at, retired_at, revoked_at in rows:
            cached = self._parsed.get(kid)
            if cached is None:
                private = import_key(json.loads(decrypt(encrypted, secret_key, PURPOSE)))
                cached = LoadedKey(kid, alg, private, public_jwk, activates_at, retired_at, revoked_at)
            elif (cached.retired_at, cached.activates_at, cached.revoked_at) != (retired_at, activates_at, revoked_at):
                cached = LoadedKey(kid, alg, cached.key, public_jwk, activates_at, retired_at, revoked_at)
            loaded.append(cached)
        if [(k.kid, k.retired_at, k.revoked_at) for k in loaded] != [
            (k.kid, k.retired_at, k.revoked_at) for k in self._keys
        ]:
            self.generation += 1
        self._parsed = {k.kid: k for k in loaded}
        self._keys = loaded
        self._version = version
        self._loaded_at = self._checked_at = time.monotonic()

    def signing_key(self, alg: str) -> LoadedKey:
        """Return the key that signs for `alg` now."""
        now = _now()
        active = [k for k in self.keys() if k.alg == alg and state_of(k, now) == "active"]
        if not active:
            raise RuntimeError(f"no active {alg} signing key: run `flask --app wsgi init`")
        return active[-1]

    def published(self) -> list[LoadedKey]:
        """Every key that may still verify a live token, or will soon sign one: never a revoked or expired one."""
        now = _now()
        return [k for k in self.keys() if state_of(k, now) in PUBLISHED]

    def by_kid(self, kid: str) -> LoadedKey | None:
        """The published key with this id, or None; re-reads at most once a second for a kid not seen yet.

        An expired or revoked key is never returned: only what is in the JWKS verifies anything.
        """
        self.keys()
        key = self._parsed.get(kid)
        if key is None and time.monotonic() - self._loaded_at > 1:
            self.invalidate()
            self.keys()
            key = self._parsed.get(kid)
        if key is None or state_of(key) not in PUBLISHED:
            return None
        return key


def keyring() -> KeyRing:
    """The key ring of the current app."""
    return runtime().keyring
