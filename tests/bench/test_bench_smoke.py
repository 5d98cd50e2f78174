"""The benchmark harness, one second per scenario against AuthGate alone: it runs and writes well-formed results.

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


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if shutil.which("wrk") is None:
        if os.environ.get("AUTHGATE_BENCH_SMOKE") == "1":
            pytest.fail("AUTHGATE_BENCH_SMOKE=1 but wrk is missing (apt-get install -y wrk)", pytrace=False)
        pytest.skip("wrk is missing (apt-get install -y wrk)")
    out = tmp_path_factory.mktemp("bench-results")
    targets = "authgate,authgate-pg" if os.environ.get("AUTHGATE_TEST_DATABASE_URL") else "authgate"
    command = [
        sys.executable, "-m", "bench.run", "--quick", "--only-authgate", "--targets", targets,
        "--duration", "1", "--warmup", "1", "--connections", "8", "--quiet-wait", "0", "--retry-disturbed", "0",
        "--results-dir", str(out), "--no-readme", *[arg for name in SCENARIOS for arg in ("--scenario", name)],
    ]  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return {
        path.name.split("-", 3)[3].removesuffix(".json"): json.loads(path.read_text()) for path in out.glob("*.json")
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
