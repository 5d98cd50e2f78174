"""`keys rotate --now` reaches every worker of `make serve` within about a second.

Two granian workers serve one SQLite database; each keeps its own key ring, re-read fully only
every AUTHGATE_KEY_REFRESH_SECONDS (30 here). What makes the new key reach both at once is the
key-ring version each worker reads at most once a second. Tokens are fetched on fresh connections,
so the two processes share the requests between them.
"""

import base64
import json
import time

import pytest
import requests

from tests.integration.serving import flask_cli, make_serve

WITHIN = 2.0


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


@pytest.fixture
def served(tmp_path):
    with make_serve(tmp_path, AUTHGATE_KEY_REFRESH_SECONDS="30") as server:
        yield server


def test_rotate_now_reaches_both_workers_within_two_seconds(served):
    base, env = served
    out = flask_cli(
        env, "clients", "create", "--client-id", "m2m", "--name", "M2M", "--grant-type", "client_credentials",
        "--auth-method", "client_secret_basic", "--signing-alg", "ES256", "--json",
    )  # fmt: skip
    secret = json.loads(out[out.index("{") :])["client_secret"]

    def kids(count: int) -> set[str]:
        seen = set()
        for _ in range(count):
            # A new connection each time: the two worker processes take turns accepting them.
            response = requests.post(
                f"{base}/oauth2/token", data={"grant_type": "client_credentials"}, auth=("m2m", secret), timeout=5
            )
            assert response.status_code == 200, response.text
            seen.add(_kid(response.json()["access_token"]))
        return seen

    before = kids(20)
    assert len(before) == 1
    rotated = json.loads(flask_cli(env, "keys", "rotate", "--alg", "ES256", "--now", "--json"))
    new_kid = rotated[0]["kid"]
    assert new_kid not in before
    started = time.monotonic()
    time.sleep(WITHIN)
    # Both workers now sign with the new key: 20 fresh connections all get it.
    assert kids(20) == {new_kid}, f"after {time.monotonic() - started:.1f} s"
