"""`flask --app wsgi ...` run as real subprocesses, started first and then released together.

Python's start-up (imports, building the app) costs about a second of CPU per process. A command
started here loads the app, says "ready" and waits for a line on stdin before it parses its
arguments and runs: parallel commands then meet at the database at the same moment, and a timed
command is timed without its start-up.
"""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60

GATED_FLASK = """
import sys
import wsgi  # noqa: F401  (the app is built before the start signal)
from flask.cli import main
print("ready", flush=True)
sys.stdin.readline()
sys.argv = ["flask", "--app", "wsgi", *sys.argv[1:]]
main()
"""


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float  # from the start signal to the exit


def command_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a command run against `database_url`, with the tests' secret key."""
    return {
        **os.environ,
        "AUTHGATE_DATABASE_URL": database_url,
        "AUTHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "AUTHGATE_BCRYPT_ROUNDS": "4",
        **extra,
    }


def run_together(commands: list[list[str]], env: dict[str, str]) -> list[Finished]:
    """Start `flask --app wsgi <args>` for each argument list, release them all at once, wait for all."""
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    processes = [
        subprocess.Popen([sys.executable, "-c", GATED_FLASK, *args], cwd=ROOT, env=env, text=True, **pipes)
        for args in commands
    ]
    try:
        for process in processes:
            ready = process.stdout.readline()
            assert ready == "ready\n", ready + process.stderr.read()
        started = time.monotonic()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        finished = []
        for process in processes:
            out, err = process.communicate(timeout=TIMEOUT)
            finished.append(Finished(process.returncode, out, err, time.monotonic() - started))
        return finished
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()


def run_command(args: list[str], env: dict[str, str]) -> Finished:
    (finished,) = run_together([args], env)
    return finished
