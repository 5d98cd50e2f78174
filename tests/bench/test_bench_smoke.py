"""The benchmark harness, one second per scenario against AuthGate alone: it runs and writes well-formed results.

The password spray (scenario 8) runs with 2 spraying connections and 3 sign-ins per phase instead
of 32 and 20, so it takes seconds; this checks that it runs and reports its numbers, not the ratio.

Nothing else of bench/ runs in `make test`. Needs wrk (Debian package); without it this skips,
unless AUTHGATE_BENCH_SMOKE=1 (as .ci/run sets), when it fails.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# `make test` and CI run it; `pytest -m "not bench"` leaves it out of a quick local run.
pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["cc_jwt_es256", "cc_jwt_rs256", "cc_opaque", "introspect", "userinfo", "jwks", "discovery",
             "code_flow_bcrypt4", "code_flow_bcrypt12", "refresh"]  # fmt: skip
SPRAY_SCENARIOS = ["spray", "spray_xff"]
SPRAY_CONNECTIONS, SPRAY_FLOWS = 2, 3


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    if shutil.which("wrk") is None:
        if os.environ.get("AUTHGATE_BENCH_SMOKE") == "1":
            pytest.fail("AUTHGATE_BENCH_SMOKE=1 but wrk is missing (apt-get install -y wrk)", pytrace=False)
        pytest.skip("wrk is missing (apt-get install -y wrk)")
    out = tmp_path_factory.mktemp("bench-results")
    targets = "authgate,authgate-pg" if os.environ.get("AUTHGATE_TEST_DATABASE_URL") else "authgate"
    command = [
        sys.executable, "-m", "bench.run", "--quick", "--only-authgate", "--targets", targets,
        "--duration", "1", "--warmup", "1", "--connections", "8", "--quiet-wait", "0", "--retry-disturbed", "0",
        "--spray-connections", str(SPRAY_CONNECTIONS), "--spray-flows", str(SPRAY_FLOWS),
        "--results-dir", str(out), "--no-readme",
        *[arg for name in SCENARIOS + SPRAY_SCENARIOS for arg in ("--scenario", name)],
    ]  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def results(results_dir):
    return {
        path.name.split("-", 3)[3].removesuffix(".json"): json.loads(path.read_text())
        for path in results_dir.glob("*.json")
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_scenario_writes_a_well_formed_result(results, scenario):
    data = results[scenario]
    assert data["scenario"] == scenario and data["unit"] in ("requests/s", "flows/s")
    assert data["rules"]["connections"] == 8
    (name, server), *_ = data["servers"].items()
    assert name.startswith("authgate")
    assert server["status"] == "ok"
    assert server[data["unit"].replace("/", "_per_")] > 0  # requests_per_s or flows_per_s
    assert server["errors"]["total"] == 0
    assert 0 < server["latency_ms"]["p50"] <= server["latency_ms"]["p99"]
    assert server["server"]["wsgi_server"] == "granian"


@pytest.mark.parametrize("scenario", SPRAY_SCENARIOS)
def test_the_spray_reports_the_users_sign_in_idle_and_under_spray(results, scenario):
    data = results[scenario]
    assert data["unit"] == "flows/s" and data["rules"]["connections"] == SPRAY_CONNECTIONS
    (name, server), *_ = data["servers"].items()
    assert name.startswith("authgate")
    assert server["status"] == "ok" and server["errors"]["total"] == 0
    assert server["server"]["bcrypt_rounds"] == 12
    assert server["server"]["trusted_proxies"] == (1 if scenario == "spray_xff" else 0)
    idle, under = server["idle"], server["under_spray"]
    assert idle["flows"] >= SPRAY_FLOWS and idle["success_rate"] == 1.0
    assert under["attempted"] >= SPRAY_FLOWS and under["success_rate"] == under["flows"] / under["attempted"]
    assert 0 < idle["latency_ms"]["p50"] <= idle["latency_ms"]["p90"]
    assert server["ratio"]["p50"] == round(under["latency_ms"]["p50"] / idle["latency_ms"]["p50"], 2)
    assert server["goal"]["met"] == (server["ratio"]["p50"] <= 2 and under["success_rate"] == 1.0)
    spray = server["spray"]
    assert spray["connections"] == SPRAY_CONNECTIONS and spray["attempts"] > 0
    # every attempt got an answer a sprayer expects: its wrong password refused, or turned away
    assert sum(spray["answers"].values()) == spray["attempts"]
    assert set(spray["answers"]) <= {"wrong_password", "429", "503"}
    if scenario == "spray_xff":
        assert spray["forwarded_for"] == "a new address per attempt"
    else:
        assert spray["source"] == "127.0.0.2" and spray["forwarded_for"] is None


def test_the_readme_table_shows_the_spray(results_dir, results):
    from bench.run import render_table

    table = render_table(results_dir)
    for scenario in SPRAY_SCENARIOS:
        server = results[scenario]["servers"]["authgate"]
        row = next(line for line in table.splitlines() if line.startswith(f"| {scenario} | AuthGate (SQLite)"))
        assert f"**{server['ratio']['p50']:.2f}×**" in row  # noqa: RUF001
        assert f"{server['under_spray']['flows']} of {server['under_spray']['attempted']}" in row
        assert f"200 wrong password: {server['spray']['answers'].get('wrong_password', 0):,}" in row
