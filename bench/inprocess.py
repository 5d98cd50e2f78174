"""Time AuthGate's protocol requests in-process: the WSGI app called directly, no server, no socket.

A cheap profiler for one core shared with others: it measures what one request costs the
application (the front or Flask, Authlib, our hooks, the database driver), not throughput. Each
scenario builds a fresh app on a new SQLite file (or the PostgreSQL database given), registers
the benchmark's clients and user (bench/peers/clients.json), warms up, then calls the app N times
with the request wrk would send, each from a copy of one WSGI environ.

    python -m bench.inprocess                          # every scenario, with the front
    python -m bench.inprocess --no-front -s cc_jwt_es256 -n 5000
    python -m bench.inprocess -s refresh --profile     # cProfile: the top functions
    python -m bench.inprocess --database postgresql://postgres@127.0.0.1:5432/authgate_x

Prints CPU µs per request (this thread's CPU time; the median of --rounds rounds of N requests) per
scenario; --json writes them to a file too.
"""

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
SHARED = json.loads((REPO / "bench" / "peers" / "clients.json").read_text())
ISSUER = "http://127.0.0.1:8000"
SCENARIOS = ("cc_jwt_es256", "cc_jwt_rs256", "cc_opaque", "introspect", "userinfo", "refresh")
CC_CLIENT = {"cc_jwt_es256": "bench-cc", "cc_jwt_rs256": "bench-cc-rs256", "cc_opaque": "bench-cc-opaque"}


def build_app(database: str | None, front: bool, workdir: Path):
    sys.path.insert(0, str(REPO))
    from app import create_app

    url = database or f"sqlite:///{workdir / 'authgate.db'}"
    config = {
        "SECRET_KEY": "in-process-benchmark-secret-key-0123456789",
        "SQLALCHEMY_DATABASE_URI": url,
        "AUTHGATE_ISSUER": ISSUER,
        "AUTHGATE_BCRYPT_ROUNDS": 4,
        "AUTHGATE_MAINTENANCE_SECONDS": 0,
        "AUTHGATE_FRONT": int(front),
    }
    os.environ.setdefault("AUTHGATE_ENV", "production")
    if database and database.startswith("postgres"):
        from app.config import normalise_database_url

        config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(database)
    app = create_app(config)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["init"])
    if result.exit_code != 0:
        raise SystemExit(f"flask init failed: {result.output}")
    return app


def register(app) -> dict[str, str]:
    """The benchmark's clients and user, as bench/servers.py registers them; the secrets by client id."""
    from app.services import clients, roles, users

    secrets = {}
    with app.app_context():
        for client_id, c in SHARED["clients"].items():
            fields = {
                "client_id": client_id,
                "name": client_id,
                "grant_types": c["grant_types"],
                "scopes": c["scope"].split(),
                "token_format": c["token_format"],
                "signing_alg": c["signing_alg"],
                "redirect_uris": c.get("redirect_uris", []),
                "access_token_lifetime": SHARED["access_token_ttl"],
            }
            if "authorization_code" in c["grant_types"]:
                fields.update(require_consent=False, refresh_token_lifetime=SHARED["refresh_token_ttl"])
            secrets[client_id] = clients.create_client(**fields)[1]
        user = SHARED["user"]
        roles.create_role("bench-web", user["role"])
        users.create_user(
            "bench-web", user["username"], password=user["password"], email=user["email"],
            first_name=user["first_name"], last_name=user["last_name"], roles=[user["role"]],
        )  # fmt: skip
    return secrets


def environ(method: str, path: str, headers: dict, body: bytes = b"") -> dict:
    env = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "body": body,
    }
    if body:
        env["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        env["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers.items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def call(app, template: dict) -> tuple[str, bytes]:
    env = dict(template)
    env["wsgi.input"] = io.BytesIO(env.pop("body"))
    status = []
    chunks = app(env, lambda s, h, exc_info=None: status.append(s))
    body = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return status[0], body


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def form(**fields) -> bytes:
    return urlencode(fields).encode()


def code_flow(app, secrets) -> dict:
    """The bench user's tokens, as the code flow ends (the code stored directly, then exchanged)."""
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    from app.extensions import db
    from app.services import tokens, users
    from app.services.client_cache import find_client

    verifier = "v" * 50
    with app.app_context():
        client = find_client("bench-web")
        user = users.get_user(client, SHARED["user"]["username"])
        code = tokens.new_code()
        tokens.store_code(
            code, client, user, SHARED["redirect_uri"], SHARED["clients"]["bench-web"]["scope"], "n",
            create_s256_code_challenge(verifier), "S256", None,
        )  # fmt: skip
        db.session.commit()
    body = form(grant_type="authorization_code", code=code, redirect_uri=SHARED["redirect_uri"], code_verifier=verifier)
    auth = {"Authorization": basic("bench-web", secrets["bench-web"])}
    status, answer = call(app, environ("POST", "/oauth2/token", auth, body))
    assert status.startswith("200"), answer
    return json.loads(answer)


class Scenario:
    """The request of one scenario; `next()` gives the environ of the next request."""

    def __init__(self, name: str, app, secrets: dict):
        self.name, self.app = name, app
        web = {"Authorization": basic("bench-web", secrets["bench-web"])}
        if name in CC_CLIENT:
            client_id = CC_CLIENT[name]
            env = environ("POST", "/oauth2/token", {"Authorization": basic(client_id, secrets[client_id])},
                          form(grant_type="client_credentials", scope="api"))  # fmt: skip
            self.next = lambda: env
        elif name == "introspect":
            auth = {"Authorization": basic("bench-cc-opaque", secrets["bench-cc-opaque"])}
            token_env = environ("POST", "/oauth2/token", auth, form(grant_type="client_credentials", scope="api"))
            token = json.loads(call(app, token_env)[1])["access_token"]
            env = environ("POST", "/oauth2/introspect", auth, form(token=token))
            self.next = lambda: env
        elif name == "userinfo":
            token = code_flow(app, secrets)["access_token"]
            env = environ("GET", "/oauth2/userinfo", {"Authorization": f"Bearer {token}"})
            self.next = lambda: env
        elif name == "refresh":
            self.web = web
            self.refresh_token = code_flow(app, secrets)["refresh_token"]
            self.next = self._refresh
        else:
            raise SystemExit(f"unknown scenario {name!r}")

    def _refresh(self) -> dict:
        body = form(grant_type="refresh_token", refresh_token=self.refresh_token)
        return environ("POST", "/oauth2/token", self.web, body)

    def run(self, n: int) -> float:
        """CPU seconds of this thread for n requests (the environ copies included, nothing else).

        CPU time, not wall time: the machine may be shared, and waiting for the core is not the request's cost.
        """
        expected = b'"refresh_token"' if self.name == "refresh" else None
        started = time.thread_time()
        for _ in range(n):
            status, body = call(self.app, self.next())
            if expected is not None:
                if not status.startswith("200"):
                    raise SystemExit(f"{self.name}: {status} {body[:200]!r}")
                self.refresh_token = json.loads(body)["refresh_token"]
        elapsed = time.thread_time() - started
        status, body = call(self.app, self.next())
        if not status.startswith("200") or b"error" in body:
            raise SystemExit(f"{self.name}: {status} {body[:200]!r}")
        if expected is not None:
            self.refresh_token = json.loads(body)["refresh_token"]
        return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-s", "--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("-n", type=int, default=2000, help="requests per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-front", action="store_true", help="every request through Flask (AUTHGATE_FRONT=0)")
    parser.add_argument("--database", help="a PostgreSQL URL (default: a new SQLite file)")
    parser.add_argument("--profile", action="store_true", help="cProfile one round; print the top functions")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--sort", default="tottime", help="pstats order: tottime (default), cumulative, ...")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = {}
    for name in args.scenario or SCENARIOS:
        with tempfile.TemporaryDirectory(prefix="authgate-inprocess-") as workdir:
            app = build_app(args.database, not args.no_front, Path(workdir))
            scenario = Scenario(name, app, register(app))
            scenario.run(min(args.n, 500))  # warm-up: caches, keys, connections
            if args.profile:
                profiler = cProfile.Profile(time.thread_time)  # CPU, not waiting for the database
                profiler.enable()
                scenario.run(args.n)
                profiler.disable()
                print(f"== {name} ({'flask only' if args.no_front else 'front'}), {args.n} requests")
                pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
                continue
            per_request = [scenario.run(args.n) / args.n * 1e6 for _ in range(args.rounds)]
            results[name] = {"us_per_request": round(statistics.median(per_request), 1),
                             "rounds": [round(r, 1) for r in per_request]}  # fmt: skip
            print(f"{name:14} {results[name]['us_per_request']:8.1f} µs/request  rounds {results[name]['rounds']}")
            if args.database:
                from app.extensions import db

                with app.app_context():
                    db.drop_all()
                    db.session.execute(db.text("DROP TABLE IF EXISTS alembic_version"))
                    db.session.commit()
                    db.engine.dispose()
    if args.json:
        meta = {"front": not args.no_front, "n": args.n, "rounds": args.rounds, "database": args.database or "sqlite"}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
