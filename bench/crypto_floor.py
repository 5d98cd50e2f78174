"""The crypto floor: JWS signatures per second on one core with joserfc (what AuthGate signs with).

A token endpoint that signs a JWT cannot answer faster than it can sign, so this is the ceiling
for scenario 1 (client_credentials → JWT) on this machine. Run it pinned to the server's core:

    taskset -c 1 .venv/bin/python -m bench.crypto_floor [--seconds 2] [--rounds 3] [--json PATH]

It signs a typical RFC 9068 access-token payload with a key imported once (as AuthGate does per
process) and also reports verification, for the userinfo scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

CLAIMS = {
    "iss": "http://127.0.0.1:8100",
    "sub": "bench-cc",
    "aud": "http://127.0.0.1:8100",
    "client_id": "bench-cc",
    "scope": "api",
    "jti": "0123456789abcdef0123456789abcdef",
    "iat": 1_800_000_000,
    "exp": 1_800_003_600,
}


def _core_jiffies() -> dict[str, list[int]]:
    out = {}
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *values = line.split()
                out[name] = [int(v) for v in values[:8]]
    return out


def _core_busy(before: dict, after: dict) -> dict[str, float]:
    """Busy % per core; other work on the other core slows this one too on this VM."""
    busy = {}
    for name, values in after.items():
        d = [b - a for a, b in zip(before.get(name, values), values, strict=True)]
        busy[name] = round(100 * (sum(d) - d[3] - d[4]) / (sum(d) or 1), 1)
    return busy


def rate(fn, seconds: float) -> float:
    for _ in range(50):  # warm caches
        fn()
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        n += 50
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=2.0, help="per round (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="the best of this many rounds counts (default 3)")
    p.add_argument("--json", help="also write the numbers to this file")
    args = p.parse_args(argv)
    keys = {
        "ES256": ECKey.generate_key("P-256", parameters={"kid": "es", "alg": "ES256"}, private=True),
        "RS256": RSAKey.generate_key(2048, parameters={"kid": "rs", "alg": "RS256"}, private=True),
    }
    results = {}
    stat0 = _core_jiffies()
    for alg, key in keys.items():
        header = {"alg": alg, "typ": "at+jwt", "kid": key.kid}
        token = jwt.encode(header, CLAIMS, key, algorithms=[alg])
        # best of several rounds: other work on the machine only ever makes a round slower
        sign = max(
            rate(lambda h=header, k=key, a=alg: jwt.encode(h, CLAIMS, k, algorithms=[a]), args.seconds)
            for _ in range(args.rounds)
        )
        verify = max(
            rate(lambda t=token, k=key, a=alg: jwt.decode(t, k, algorithms=[a]), args.seconds)
            for _ in range(args.rounds)
        )
        results[alg] = {
            "sign_per_s": round(sign),
            "verify_per_s": round(verify),
            "sign_us": round(1e6 / sign, 1),
            "verify_us": round(1e6 / verify, 1),
        }
        print(
            f"{alg}: {sign:8,.0f} signatures/s ({1e6 / sign:6.1f} µs)   "
            f"{verify:8,.0f} verifications/s ({1e6 / verify:6.1f} µs)"
        )
    cores = _core_busy(stat0, _core_jiffies())
    print("core busy % during the run: " + ", ".join(f"{k} {v}%" for k, v in cores.items()))
    affinity = sorted(os.sched_getaffinity(0))
    if len(affinity) != 1:
        print(f"note: not pinned to one core (affinity {affinity}); run with `taskset -c 1`")
    if args.json:
        from importlib.metadata import version

        doc = {
            "date": time.strftime("%Y-%m-%d"),
            "cpu_affinity": affinity,
            "python": platform.python_version(),
            "joserfc": version("joserfc"),
            "cryptography": version("cryptography"),
            "results": results,
            "core_busy_pct": cores,
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
