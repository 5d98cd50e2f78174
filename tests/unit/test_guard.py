"""The guard's arithmetic (app/services/guard.py), alike in memory and on Redis: locks, resets, names, keys, slots."""

import socket
import threading
import time

import pytest
import redis

from app.services.guard import Busy, Counters, Guard, Policy
from tests.helpers import redis_settings


def policy(**limits) -> Policy:
    values = {
        "failures_before_lock": 3,
        "wait_increment": 60,
        "max_wait": 900,
        "reset_seconds": 3600,
        "address_failures": 0,
        "address_window": 600,
        "client_failures": 0,
        "client_address_failures": 0,
        "client_window": 300,
        "hash_slots": 2,
        "hash_wait": 0.5,
        **limits,
    }
    return Policy(**values)


@pytest.fixture(params=["memory", "redis"])
def counters(request):
    """The counters in this process's memory, or on the test Redis under a prefix of the test's own."""
    if request.param == "memory":
        yield Counters(None, "unused")
        return
    settings = redis_settings()
    yield Counters(settings["AUTHGATE_REDIS_URL"], settings["AUTHGATE_REDIS_PREFIX"])
    server = redis.Redis.from_url(settings["AUTHGATE_REDIS_URL"])
    for key in server.scan_iter(f"{settings['AUTHGATE_REDIS_PREFIX']}*"):
        server.delete(key)


def stored_keys(counters: Counters) -> list[str]:
    if counters.shared is None:
        return list(counters.memory.storage)
    server = counters.shared.storage
    return [key.decode() for key in server.scan_iter(f"{counters.shared.key_prefix}*")]


def test_lock_waits_grow_with_the_failures_and_stop_at_the_maximum(counters):
    guard = Guard(policy(failures_before_lock=2, wait_increment=10, max_wait=25), counters)
    assert guard.account_failed("web", "alice") is None
    assert guard.account_lock("web", "alice") is None
    assert guard.account_failed("web", "alice") == 10
    assert 8 <= guard.account_lock("web", "alice") <= 10
    # (The forms count no failure while a name is locked; counted anyway, each further one locks longer.)
    assert [guard.account_failed("web", "alice") for _ in range(5)] == [10, 20, 20, 25, 25]


def test_failures_are_forgotten_after_the_reset_time(counters):
    guard = Guard(policy(failures_before_lock=3, reset_seconds=1), counters)
    assert [guard.account_failed("web", "alice") for _ in range(2)] == [None, None]
    time.sleep(1.2)
    assert [guard.account_failed("web", "alice") for _ in range(3)] == [None, None, 60]


def test_forgetting_a_name_ends_its_lock_and_its_count(counters):
    guard = Guard(policy(failures_before_lock=2), counters)
    guard.account_failed("web", "alice")
    assert guard.account_forget("web", "alice") is False  # counted, not locked
    assert guard.account_failed("web", "alice") is None  # counting starts over
    assert guard.account_failed("web", "alice") == 60
    assert guard.account_lock("web", "alice") is not None
    assert guard.account_forget("web", "alice", "alice@example.com") is True
    assert guard.account_lock("web", "alice") is None
    assert guard.account_failed("web", "alice") is None


def test_names_are_case_folded_and_trimmed_and_counted_per_client(counters):
    guard = Guard(policy(failures_before_lock=3), counters)
    for typed in ("Alice", " ALICE ", "alice"):
        guard.account_failed("web", typed)
    assert guard.account_lock("web", "aLiCe") is not None
    assert guard.account_lock("shop", "alice") is None
    assert guard.account_lock("web", "alice2") is None


def test_keys_hold_no_typed_text(counters):
    guard = Guard(policy(failures_before_lock=1), counters)
    typed = "Hunter2-Typed-Here"
    guard.account_failed("web", typed)
    keys = stored_keys(counters)
    assert len(keys) == 2  # the count and the lock
    assert not any(part in key.casefold() for key in keys for part in ("hunter2", "web"))


def test_an_address_is_throttled_after_its_allowance(counters):
    guard = Guard(policy(address_failures=3, address_window=60), counters)
    assert guard.address_wait("10.0.0.66") is None and not guard.address_is_suspect("10.0.0.66")
    assert [guard.address_failed("10.0.0.66") for _ in range(3)] == [False, False, True]
    assert 55 <= guard.address_wait("10.0.0.66") <= 60
    assert guard.address_is_suspect("10.0.0.66")
    assert guard.address_wait("10.0.0.7") is None and not guard.address_is_suspect("10.0.0.7")


def test_zero_turns_a_limit_off(counters):
    guard = Guard(policy(failures_before_lock=0, address_failures=0), counters)
    for _ in range(20):
        assert guard.account_failed("web", "alice") is None
        assert guard.address_failed("10.0.0.66") is False
    assert guard.account_lock("web", "alice") is None and guard.address_wait("10.0.0.66") is None


def test_an_unreachable_redis_is_reported_and_counting_goes_on_in_memory():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    counters = Counters(dead, "authgate")
    guard = Guard(policy(failures_before_lock=2), counters)
    assert [guard.account_failed("web", "alice") for _ in range(2)] == [None, 60]
    assert guard.account_lock("web", "alice") is not None
    assert "ConnectionError" in counters.check()


# --- hash slots ---------------------------------------------------------------------------------


def test_suspects_share_one_slot_and_clean_addresses_wait_for_the_rest():
    guard = Guard(policy(hash_slots=3, hash_wait=0.5), Counters(None, "unused"))
    with guard.hash_slot(suspect=True):
        started = time.monotonic()
        with pytest.raises(Busy), guard.hash_slot(suspect=True):  # a second suspect: turned away at once
            pass
        assert time.monotonic() - started < 0.1
        with guard.hash_slot(suspect=False), guard.hash_slot(suspect=False):
            started = time.monotonic()
            # Every slot taken: a clean attempt waits its while, then is turned away.
            with pytest.raises(Busy), guard.hash_slot(suspect=False):
                pass
            assert 0.45 < time.monotonic() - started < 1.5
    # All released: each kind gets its slots again.
    with guard.hash_slot(suspect=True), guard.hash_slot(suspect=False), guard.hash_slot(suspect=False):
        pass


def test_a_clean_attempt_gets_the_slot_that_frees_while_it_waits():
    guard = Guard(policy(hash_slots=1, hash_wait=5), Counters(None, "unused"))
    release = threading.Event()

    def hashing():
        with guard.hash_slot(suspect=False):
            release.wait(5)

    other = threading.Thread(target=hashing)
    other.start()
    time.sleep(0.05)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with guard.hash_slot(suspect=False):
        assert 0.2 < time.monotonic() - started < 2
    other.join()


def test_a_client_authentication_from_an_address_without_failures_costs_one_look_up(counters, monkeypatch):
    guard = Guard(policy(client_failures=2, client_address_failures=5), counters)
    calls = []
    run = counters.run
    monkeypatch.setattr(counters, "run", lambda operation: calls.append(operation) or run(operation))
    assert guard.client_auth_wait("svc", "192.0.2.1") is None
    assert len(calls) == 1
    guard.client_auth_failed("svc", "192.0.2.1")
    guard.client_auth_failed("svc", "192.0.2.1")
    calls.clear()
    assert guard.client_auth_wait("svc", "192.0.2.1") is not None  # the client's allowance at that address is used up
    assert len(calls) == 2
    assert guard.client_auth_wait("other", "192.0.2.1") is None  # other clients from there still may
    assert guard.client_auth_wait("svc", "192.0.2.2") is None  # and the same client from elsewhere
