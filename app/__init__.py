"""AuthGate IAM: an OAuth 2.1 / OpenID Connect authorization server."""

from datetime import timedelta
from pathlib import Path

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.middleware.proxy_fix import ProxyFix

from app import config as settings
from app.extensions import CookieSessions, csrf, db, login_manager, migrate

__version__ = "0.1.0"


def security_headers(response):
    """Add the headers every response carries (and pages more); also applied by app/oauth/front.py."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        # Pages are never framed (no clickjacking of the sign-in form) and load only our own files.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        )
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def create_app(config: dict | None = None) -> Flask:
    """Build the application; `config` overrides settings read from the environment."""
    app = Flask(__name__, instance_relative_config=True)
    overrides = dict(config or {})
    app.config.update(settings.load(app.instance_path, overrides=overrides))
    app.config.update(overrides)
    app.session_interface = CookieSessions()
    app.permanent_session_lifetime = timedelta(seconds=app.config["AUTHGATE_SESSION_LIFETIME"])
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if app.config["AUTHGATE_FRONT"]:
        from app.oauth.front import Front

        # Inside the proxy handling: the front sees the client's address and scheme as Flask does.
        app.wsgi_app = Front(app, app.wsgi_app)  # type: ignore[method-assign]
    proxies = app.config["AUTHGATE_TRUSTED_PROXIES"]
    if proxies:
        # Wrapping app.wsgi_app is how Flask documents adding middleware; its type declares a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )

    from app import runtime

    state = runtime.init_app(app)
    db.init_app(app)
    with app.app_context():
        runtime.sqlite_pragmas(db.engine)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)

    from app.oauth import server

    server.init_app(app)

    from app.admin import bp as admin_bp
    from app.auth import bp as auth_bp
    from app.oauth import bp as oauth_bp

    app.register_blueprint(oauth_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)

    from app import cli, errors
    from app.health import bp as health_bp

    app.register_blueprint(health_bp)
    cli.register(app)
    errors.init_app(app)

    from app.services import maintenance

    state.housekeeper = maintenance.init_app(app)

    app.after_request(security_headers)

    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        message = "The form expired or was sent from elsewhere. Go back, reload the page and try again."
        return render_template("error.html", title="Please try again", message=message), 400

    return app
