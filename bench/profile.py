"""CPU profile of a Python server under load, with py-spy (sampling, from outside the process).

`python -m bench.run --profile` runs scenarios 1 and 6 once more while py-spy samples the
server's process group (on core 0, so the server's core is left alone), then writes
bench/results/<date>-profile-<scenario>-<target>.txt: where the worker's CPU time went, by area
(AuthGate's code, Authlib, joserfc, cryptography, SQLAlchemy, the database driver, Flask/Werkzeug,
Jinja, bcrypt, the WSGI server, ...) and by function (self and inclusive samples).

    python -m bench.profile RAW_FILE        # summarise a py-spy --format raw file
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TOOLS = BENCH / ".work" / "tools-venv"
REQUIREMENTS = BENCH / "requirements-tools.txt"


class ProfileError(RuntimeError):
    pass


def ensure_py_spy() -> Path:
    spy = TOOLS / "bin" / "py-spy"
    stamp = TOOLS / ".installed"
    if spy.exists() and stamp.exists() and stamp.read_text() == REQUIREMENTS.read_text():
        return spy
    py = sys.executable
    steps = [
        [py, "-m", "venv", str(TOOLS)],
        [str(TOOLS / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise ProfileError(f"installing py-spy failed: {proc.stderr.strip()[-300:]}")
    stamp.write_text(REQUIREMENTS.read_text())
    return spy


def start_py_spy(spy: Path, pid: int, out: Path, duration: float, core: str) -> subprocess.Popen:
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "taskset",
        "-c",
        core,
        str(spy),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--rate",
        "200",
        "--format",
        "raw",
        "--nonblocking",
        "--duration",
        str(int(duration + 0.999)),
        "--output",
        str(out),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_py_spy(proc: subprocess.Popen, raw: Path) -> dict:
    out, _ = proc.communicate(timeout=120)
    if proc.returncode != 0 or not raw.exists():
        return {"error": f"py-spy failed ({proc.returncode}): {out.strip()[-300:]}", "samples": 0, "areas": []}
    return summarise(raw.read_text())


# py-spy prints file names relative to their sys.path entry (django/db/..., app/oauth/...).
AREAS = [
    ("authgate", re.compile(r"^(app/|wsgi\.py)")),
    ("authlib", re.compile(r"(^|site-packages/)authlib/")),
    ("joserfc", re.compile(r"(^|site-packages/)joserfc/")),
    ("cryptography", re.compile(r"(^|site-packages/)cryptography/")),
    ("bcrypt", re.compile(r"(^|site-packages/)bcrypt/")),
    ("sqlalchemy", re.compile(r"(^|site-packages/)sqlalchemy/")),
    ("db driver", re.compile(r"(^|site-packages/)(psycopg|psycopg_binary|psycopg_pool|sqlite3)/")),
    ("flask/werkzeug", re.compile(r"(^|site-packages/)(flask\w*|werkzeug|itsdangerous|blinker)/")),
    ("wtforms", re.compile(r"(^|site-packages/)(wtforms|flask_wtf)/")),
    ("jinja", re.compile(r"(^|site-packages/)(jinja2|jinja2_fragments|markupsafe)/")),
    ("oauthlib/DOT", re.compile(r"(^|site-packages/)(oauthlib|oauth2_provider|jwcrypto|benchsite)/")),
    ("django", re.compile(r"(^|site-packages/)django/")),
    ("wsgi server", re.compile(r"(^|site-packages/)(gunicorn|granian)/")),
]


def area_of(file: str) -> str:
    for name, pattern in AREAS:
        if pattern.search(file):
            return name
    return "stdlib/other"


FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


# Leaves where a thread waits rather than computes (py-spy's idle detection misses some of
# these in --nonblocking mode): left out of the percentages and counted as waiting.
WAITING = {
    ("select", "selectors.py"),
    ("poll", "selectors.py"),
    ("wait", "threading.py"),
    ("get", "queue.py"),
    ("_worker", "concurrent/futures/thread.py"),
    ("accept", "socket.py"),
    ("sleep", "gunicorn/workers/base.py"),
}


def is_waiting(leaf: tuple[str, str]) -> bool:
    func, file = leaf
    return any(func.endswith(f) and file.endswith(path) for f, path in WAITING)


def summarise(raw: str) -> dict:
    """py-spy raw format: one line per unique stack, 'frame;frame;...;leaf COUNT'."""
    self_funcs: Counter = Counter()
    incl_funcs: Counter = Counter()
    areas: Counter = Counter()
    total = waiting = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        # drop py-spy's "process NNN:" / "thread ..." pseudo frames
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        keys = []
        for f in frames:
            m = FRAME.match(f)
            keys.append((m.group("func"), m.group("file")) if m else (f, ""))
        leaf = keys[-1]
        if is_waiting(leaf):
            waiting += n
            continue
        total += n
        self_funcs[f"{leaf[0]} ({short(leaf[1])})"] += n
        # area of the innermost frame that is not the stdlib, else stdlib
        area = next((a for a in (area_of(file) for _, file in reversed(keys)) if a != "stdlib/other"), "stdlib/other")
        areas[area] += n
        for func, file in set(keys):
            incl_funcs[f"{func} ({short(file)})"] += n

    def pct(c: Counter, k=25):
        return [{"name": name, "samples": v, "pct": round(100 * v / total, 1)} for name, v in c.most_common(k)]

    return {
        "samples": total,
        "waiting_samples": waiting,
        "areas": pct(areas, 20),
        "self": pct(self_funcs),
        "inclusive": pct(incl_funcs),
    }


def short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3."):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def render(summary: dict, title: str) -> str:
    if summary.get("error"):
        return f"# CPU profile: {title}\n\n{summary['error']}\n"
    out = [
        f"# CPU profile: {title}",
        "",
        f"{summary['samples']} samples (py-spy, 200 Hz, on-CPU only; {summary.get('waiting_samples', 0)} more in "
        "select/wait/queue.get left out).",
        "Area = the package of the innermost frame outside the standard library.",
        "",
        "## By area",
    ]
    out += [f"  {a['pct']:5.1f}%  {a['name']}" for a in summary["areas"]]
    out += ["", "## Functions by self time"]
    out += [f"  {a['pct']:5.1f}%  {a['name']}" for a in summary["self"]]
    out += ["", "## Functions by inclusive time"]
    out += [f"  {a['pct']:5.1f}%  {a['name']}" for a in summary["inclusive"]]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    s = summarise(Path(sys.argv[1]).read_text())
    print(render(s, sys.argv[1]))
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(json.dumps(s, indent=2))
