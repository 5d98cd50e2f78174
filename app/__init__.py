"""AuthGate IAM: an OAuth 2.1 / OpenID Connect authorization server."""

from pathlib import Path

from flask import Flask, jsonify

from app import config as settings
from app.extensions import csrf, db, login_manager, migrate

__version__ = "0.1.0"


def create_app(config: dict | None = None) -> Flask:
    """Build the application; `config` overrides settings read from the environment."""
    app = Flask(__name__, instance_relative_config=True)
    overrides = dict(config or {})
    app.config.update(settings.load(app.instance_path, overrides=overrides))
    app.config.update(overrides)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    migrate.init_app(app, db, directory=_migrations_dir())
    csrf.init_app(app)
    login_manager.init_app(app)

    from app import cli

    cli.register(app)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", version=__version__)

    return app


def _migrations_dir() -> str:
    return str(Path(__file__).resolve().parent.parent / "migrations")
