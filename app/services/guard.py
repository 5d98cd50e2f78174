"""Brute-force protection: account locks, per-address throttles and a bound on password hashing.

Modelled on Keycloak's brute-force detection. Every password form counts failures per
(client, account) where the account is the name typed (username or email, case-folded, stored only
as a hash): after `failures before lock` failures each further failure locks that name for
`wait increment * (failures // failures before lock)` seconds, at most `maximum wait`; the count is
forgotten `reset time` after the first failure or at a successful sign-in. Names that belong to no
account lock exactly like real ones, so a lock says nothing about whether an account exists.
Failures are also counted per client address across accounts (password spraying), and failed
client authentications at the token endpoints per (client_id, address) and per address; only
failures count, so nobody can lock out a client or user whose own attempts succeed.

The counters live in Redis when AUTHGATE_REDIS_URL is set, so every worker sees the same counts;
otherwise in this process's memory, which is right for one worker. While Redis does not answer the
counters fall back to memory (logged) rather than failing sign-ins; /readyz reports Redis.

Hashing a password costs ~0.2 s of a core. A worker hashes at most AUTHGATE_HASH_SLOTS passwords at
once, and attempts from addresses with recent failures share one of those slots between them: a
suspect attempt that finds it taken is answered at once with 503 instead of queueing, so a spray
from a few addresses burns at most one slot's worth of hashing per worker and never stands in
line before anyone else. Attempts from clean addresses wait for a slot (a rush of real sign-ins
is slow, not refused) up to AUTHGATE_HASH_WAIT_SECONDS, then get the 503 too.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import redis
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from app.models import Client, User
from app.services import audit

log = logging.getLogger("authgate.guard")
T = TypeVar("T")

ACCOUNT_LOCKED = "account_locked"
ACCOUNT_UNLOCKED = "account_unlocked"
ADDRESS_THROTTLED = "address_throttled"
CLIENT_AUTH_THROTTLED = "client_auth_throttled"

# How long the counters stay in memory after Redis stopped answering, before Redis is tried again.
REDIS_RETRY_SECONDS = 5


class Throttled(Exception):
    """Too many failures: come back in `retry_after` seconds."""

    def __init__(self, retry_after: float):
        super().__init__(f"try again in {retry_after} seconds")
        self.retry_after = max(1, math.ceil(retry_after))


class Busy(Exception):
    """Every password-hashing slot of this worker is taken."""

    retry_after = 1


@dataclass(frozen=True)
class Policy:
    """The limits, from the AUTHGATE_LOCKOUT_*, AUTHGATE_SIGNIN_*, AUTHGATE_CLIENT_AUTH_* settings (0 turns one off)."""

    failures_before_lock: int
    wait_increment: int
    max_wait: int
    reset_seconds: int
    address_failures: int
    address_window: int
    client_failures: int
    client_address_failures: int
    client_window: int
    hash_slots: int
    hash_wait: float

    @classmethod
    def from_config(cls, config) -> Policy:
        return cls(
            failures_before_lock=config["AUTHGATE_LOCKOUT_FAILURES"],
            wait_increment=config["AUTHGATE_LOCKOUT_WAIT_SECONDS"],
            max_wait=config["AUTHGATE_LOCKOUT_MAX_WAIT_SECONDS"],
            reset_seconds=config["AUTHGATE_LOCKOUT_RESET_SECONDS"],
            address_failures=config["AUTHGATE_SIGNIN_ADDRESS_FAILURES"],
            address_window=config["AUTHGATE_SIGNIN_ADDRESS_WINDOW"],
            client_failures=config["AUTHGATE_CLIENT_AUTH_FAILURES"],
            client_address_failures=config["AUTHGATE_CLIENT_AUTH_ADDRESS_FAILURES"],
            client_window=config["AUTHGATE_CLIENT_AUTH_WINDOW"],
            hash_slots=config["AUTHGATE_HASH_SLOTS"],
            hash_wait=config["AUTHGATE_HASH_WAIT_SECONDS"],
        )


class Counters:
    """The shared store: limits' Redis storage when configured, this process's memory otherwise or meanwhile."""

    def __init__(self, redis_url: str | None, prefix: str):
        self.memory: Storage = MemoryStorage()
        self.shared: RedisStorage | None = None
        if redis_url:
            self.shared = RedisStorage(
                redis_url, key_prefix=prefix, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
            )
        self._limiters = {id(self.memory): MovingWindowRateLimiter(self.memory)}
        if self.shared is not None:
            self._limiters[id(self.shared)] = MovingWindowRateLimiter(self.shared)
        self._redis_down_until = 0.0

    def run(self, operation: Callable[[Storage, MovingWindowRateLimiter], T]) -> T:
        """Apply `operation` to the shared store, or to memory while Redis is unconfigured or not answering."""
        if self.shared is not None and time.monotonic() >= self._redis_down_until:
            try:
                return operation(self.shared, self._limiters[id(self.shared)])
            except redis.RedisError as error:
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                log.error("Redis is not answering (%s); counting in this worker's memory for now", error)
        return operation(self.memory, self._limiters[id(self.memory)])

    def check(self) -> str | None:
        """None when Redis answers (or is not configured); else what went wrong, for /readyz."""
        if self.shared is None:
            return None
        try:
            self.shared.storage.ping()
        except redis.RedisError as error:
            return f"{type(error).__name__}: {error}"
        return None


class Guard:
    """One worker's brute-force protection: the counters and its hash slots."""

    def __init__(self, policy: Policy, counters: Counters):
        self.policy = policy
        self.counters = counters
        self._all_slots = threading.BoundedSemaphore(policy.hash_slots)
        self._suspect_slot = threading.BoundedSemaphore(1)
        self._address_item = _per(policy.address_failures, policy.address_window)
        self._client_item = _per(policy.client_failures, policy.client_window)
        self._client_address_item = _per(policy.client_address_failures, policy.client_window)

    # --- accounts -------------------------------------------------------------------------

    def account_lock(self, client_id: str, name: str) -> float | None:
        """Seconds until this name's lock at this client ends; None when it is not locked."""
        key = _lock_key(client_id, name)

        def remaining(store: Storage, _limiter) -> float | None:
            if not store.get(key):
                return None
            return max(1.0, store.get_expiry(key) - time.time())

        return self.counters.run(remaining)

    def account_failed(self, client_id: str, name: str) -> int | None:
        """Count a failure; the seconds of the lock it started, if it started one."""
        policy = self.policy
        if not policy.failures_before_lock:
            return None
        failures_key, lock_key = _failures_key(client_id, name), _lock_key(client_id, name)

        def count(store: Storage, _limiter) -> int | None:
            failures = store.incr(failures_key, policy.reset_seconds)
            if failures < policy.failures_before_lock:
                return None
            wait = min(policy.wait_increment * (failures // policy.failures_before_lock), policy.max_wait)
            store.incr(lock_key, wait)
            return wait

        return self.counters.run(count)

    def account_forget(self, client_id: str, *names: str) -> bool:
        """Clear the failures and locks of these names; whether any was locked."""

        def clear(store: Storage, _limiter) -> bool:
            locked = False
            for name in names:
                locked = bool(store.get(_lock_key(client_id, name))) or locked
                store.clear(_lock_key(client_id, name))
                store.clear(_failures_key(client_id, name))
            return locked

        return self.counters.run(clear)

    # --- addresses --------------------------------------------------------------------------

    def address_standing(self, ip: str | None) -> tuple[float | None, bool]:
        """(seconds until sign-ins from this address are accepted again or None, whether it failed recently).

        One look-up answers both: a throttled address waits, one with any failure in the window is
        a suspect (it shares one hash slot).
        """
        item = self._address_item
        if item is None or ip is None:
            return None, False
        stats = self.counters.run(lambda _store, limiter: limiter.get_window_stats(item, "signin", ip))
        wait = max(1.0, stats.reset_time - time.time()) if stats.remaining == 0 else None
        return wait, stats.remaining < item.amount

    def address_wait(self, ip: str | None) -> float | None:
        """Seconds until sign-ins from this address are accepted again; None when they are."""
        return self.address_standing(ip)[0]

    def address_is_suspect(self, ip: str | None) -> bool:
        """Whether this address failed to sign in recently (it then shares one hash slot)."""
        return self.address_standing(ip)[1]

    def address_failed(self, ip: str | None) -> bool:
        """Count a failed sign-in from this address; True when this failure used up its allowance."""
        return self._hit(self._address_item, "signin", ip)

    # --- client authentication -----------------------------------------------------------------

    def client_auth_wait(self, client_id: str | None, ip: str | None) -> float | None:
        """Seconds until this address may try to authenticate (as this client) again; None when it may.

        Every failure counts against the address too, so an address without one in its window (the
        usual case, on the token endpoint's hot path) is answered with one look-up.
        """
        waits: list[float | None] = []
        address = self._client_address_item
        if address is not None and ip is not None:
            stats = self.counters.run(lambda _store, limiter: limiter.get_window_stats(address, "client-auth", ip))
            if stats.remaining == address.amount:
                return None
            if stats.remaining == 0:
                waits.append(max(1.0, stats.reset_time - time.time()))
        if client_id:
            waits.append(self._wait(self._client_item, "client-auth", _digest(client_id), ip))
        return max((w for w in waits if w is not None), default=None)

    def client_auth_failed(self, client_id: str | None, ip: str | None) -> bool:
        """Count a failed client authentication; True when it used up an allowance."""
        exhausted = self._hit(self._client_address_item, "client-auth", ip)
        if client_id:
            exhausted = self._hit(self._client_item, "client-auth", _digest(client_id), ip) or exhausted
        return exhausted

    # --- hashing ---------------------------------------------------------------------------------

    @contextmanager
    def hash_slot(self, suspect: bool) -> Iterator[None]:
        """Hold one of this worker's password-hashing slots; raise Busy when none is free (suspects: at once)."""
        if suspect:
            if not self._suspect_slot.acquire(blocking=False):
                raise Busy
            if not self._all_slots.acquire(blocking=False):
                self._suspect_slot.release()
                raise Busy
        elif not self._all_slots.acquire(timeout=self.policy.hash_wait):
            raise Busy
        try:
            yield
        finally:
            self._all_slots.release()
            if suspect:
                self._suspect_slot.release()

    # --- allowances of actions (registrations, reset requests, messages to one account) ----------

    def spend(self, kind: str, amount: int, seconds: int, *identifiers: str | None) -> float | None:
        """Count one `kind` action by these identifiers; seconds to wait when their allowance is used up, else None."""
        item = _per(amount, seconds)
        if item is None or None in identifiers:
            return None
        ids = (kind, *(_digest(str(i)) for i in identifiers))

        def spend(_store, limiter: MovingWindowRateLimiter) -> float | None:
            if limiter.hit(item, *ids):
                return None
            return max(1.0, limiter.get_window_stats(item, *ids).reset_time - time.time())

        return self.counters.run(spend)

    # --- helpers ---------------------------------------------------------------------------------

    def _wait(self, item: RateLimitItem | None, *identifiers: str | None) -> float | None:
        if item is None or None in identifiers:
            return None
        ids = tuple(str(i) for i in identifiers)

        def wait(_store, limiter: MovingWindowRateLimiter) -> float | None:
            if limiter.test(item, *ids):
                return None
            return max(1.0, limiter.get_window_stats(item, *ids).reset_time - time.time())

        return self.counters.run(wait)

    def _hit(self, item: RateLimitItem | None, *identifiers: str | None) -> bool:
        if item is None or None in identifiers:
            return False
        ids = tuple(str(i) for i in identifiers)

        def hit(_store, limiter: MovingWindowRateLimiter) -> bool:
            """True for the failure that used up the allowance (later ones are turned away before counting)."""
            return limiter.hit(item, *ids) and limiter.get_window_stats(item, *ids).remaining == 0

        return self.counters.run(hit)


def _per(amount: int, seconds: int) -> RateLimitItem | None:
    return RateLimitItemPerSecond(amount, seconds) if amount else None


def _digest(value: str) -> str:
    """Counter keys never hold what was typed: it may be a password typed into the wrong box."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _account(client_id: str, name: str) -> str:
    return _digest(f"{client_id}\0{name.strip().casefold()}")


def _failures_key(client_id: str, name: str) -> str:
    return f"signin-failures/{_account(client_id, name)}"


def _lock_key(client_id: str, name: str) -> str:
    return f"signin-lock/{_account(client_id, name)}"


def init_app(app) -> Guard:
    return Guard(
        Policy.from_config(app.config),
        Counters(app.config["AUTHGATE_REDIS_URL"], app.config["AUTHGATE_REDIS_PREFIX"]),
    )


# --- what the views call -----------------------------------------------------------------------


def _guard() -> Guard:
    from app.runtime import runtime

    return runtime().guard


def account_names(user: User) -> list[str]:
    """The names a user can sign in with, each counted and locked on its own."""
    return [name for name in (user.username, user.email) if name]


def lock_state(client: Client, user: User) -> int | None:
    """Seconds until the user's sign-in lock ends (the longest of their names'); None when not locked."""
    guard = _guard()
    waits = [guard.account_lock(client.client_id, name) for name in account_names(user)]
    longest = max((w for w in waits if w is not None), default=None)
    return None if longest is None else math.ceil(longest)


def unlock(client: Client, user: User) -> bool:
    """End the user's lock and forget their failures (an admin's action, audited); whether they were locked."""
    was_locked = _guard().account_forget(client.client_id, *account_names(user))
    audit.record(ACCOUNT_UNLOCKED, client=client, user=user, was_locked=was_locked)
    return was_locked


def password_attempt(
    client: Client, login: str, ip: str | None, verify: Callable[[], tuple[User | None, str]], **detail
) -> tuple[User | None, str]:
    """Run one password check under the name's lock, the address's throttle and a hash slot.

    `verify` checks the password and returns (user, reason) like users.authenticate, reason
    "unknown_user" when the name belongs to no account. Raises Throttled (locked or throttled) or
    Busy (no hash slot) before any hashing. A failure is audited (with `detail`), naming the user
    only when the name is an account's, never with what was typed otherwise; a lock it starts is
    audited too. A success forgets the failures of every name of the user.
    """
    from app.services import users

    guard = _guard()
    name = login if isinstance(login, str) else ""
    address_wait, suspect = guard.address_standing(ip)
    waits = [guard.account_lock(client.client_id, name), address_wait]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        raise Throttled(wait)
    with guard.hash_slot(suspect=suspect):
        user, reason = verify()
    if user is not None:
        guard.account_forget(client.client_id, name, *account_names(user))
        return user, reason
    account = users.find_account(client, name) if reason != "unknown_user" else None
    audit.record(audit.LOGIN_FAILED, client=client, user=account, ip=ip, reason=reason, **detail)
    locked_for = guard.account_failed(client.client_id, name)
    if locked_for is not None:
        audit.record(ACCOUNT_LOCKED, client=client, user=account, ip=ip, seconds=locked_for)
    if guard.address_failed(ip):
        audit.record(ADDRESS_THROTTLED, client=client, ip=ip, window=guard.policy.address_window)
    return None, reason


def spend(kind: str, setting: str, *identifiers: str | None, seconds: int = 3600) -> None:
    """Count one `kind` action (a registration, a reset request, a message to an account) by these
    identifiers against the allowance the setting gives per `seconds`; raise Throttled once it is used up."""
    from flask import current_app

    wait = _guard().spend(kind, current_app.config[setting], seconds, *identifiers)
    if wait is not None:
        raise Throttled(wait)


def client_auth_wait(client_id: str | None, ip: str | None) -> None:
    """Raise Throttled when this address failed client authentication too often (as this client)."""
    wait = _guard().client_auth_wait(client_id, ip)
    if wait is not None:
        raise Throttled(wait)


def client_auth_failed(client_id: str | None, ip: str | None) -> None:
    """Count a failed client authentication; audit when it uses up an allowance."""
    if _guard().client_auth_failed(client_id, ip):
        audit.record(CLIENT_AUTH_THROTTLED, ip=ip, client_id=(client_id or "")[:128])
