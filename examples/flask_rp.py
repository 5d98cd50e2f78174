"""A relying party: a Flask app that signs its users in with AuthGate. Safe to copy.

    flask --app wsgi clients create --client-id demo --name "Demo app" \
        --grant-type authorization_code --grant-type refresh_token \
        --redirect-uri http://127.0.0.1:8765/callback --post-logout-redirect-uri http://127.0.0.1:8765/ --json
    AUTHGATE_CLIENT_SECRET=agcs_... .venv/bin/python examples/flask_rp.py   # then open http://127.0.0.1:8765/

Options: --port (8765; register its callback), --issuer (AUTHGATE_ISSUER or http://localhost:5000),
--client-id (demo), --client-secret (AUTHGATE_CLIENT_SECRET: an environment variable keeps it out of `ps`).

It uses only discovery: Authlib's Flask client reads /.well-known/openid-configuration and does
PKCE, state, nonce and ID token validation itself. Names come from the user (or a social login
provider): the page is a Jinja template, which escapes them, never an f-string.
"""

import argparse
import os
from urllib.parse import urlencode

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, render_template_string, request, session, url_for
from requests import RequestException

PAGE = """<!doctype html><title>Demo app</title>
{% if error %}<h1>Sign-in failed</h1><p>{{ error }}</p><p><a href="/login">Try again</a></p>
{% elif user %}<p>Hello {{ user.name }} ({{ user.sub }}), roles: {{ user.roles | join(", ") }}</p>
<p><a href="/logout">Sign out</a></p>
{% else %}<p><a href="/login">Sign in with AuthGate</a></p>{% endif %}"""


def failed(reason: str, status: int = 400):
    """A page saying why the sign-in failed, with a way to try again, instead of a traceback."""
    return render_template_string(PAGE, error=reason), status


def create_app(issuer: str, client_id: str, client_secret: str) -> Flask:
    app = Flask(__name__)
    app.secret_key = os.urandom(32)
    # Its own cookie: cookies ignore ports, so on one host the default "session" of two Flask apps collide.
    app.config["SESSION_COOKIE_NAME"] = "demo_rp_session"
    oauth = OAuth(app)
    oauth.register(
        "authgate",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email roles", "code_challenge_method": "S256"},
    )

    @app.get("/")
    def home():
        return render_template_string(PAGE, user=session.get("user"))

    @app.get("/login")
    def login():
        return oauth.authgate.authorize_redirect(url_for("callback", _external=True))

    @app.get("/callback")
    def callback():
        if "error" in request.args:  # the user declined, or AuthGate refused the request
            return failed(request.args.get("error_description") or request.args["error"])
        try:  # checks state, PKCE, the ID token's signature and nonce
            token = oauth.authgate.authorize_access_token()
        except OAuthError as error:  # e.g. a state this browser did not start: a stale or forged link
            return failed(error.description or error.error)
        except RequestException:
            return failed(f"AuthGate at {issuer} did not answer.", 502)
        session["user"], session["id_token"] = token["userinfo"], token["id_token"]
        return redirect("/")

    @app.get("/logout")
    def logout():
        id_token = session.pop("id_token", "")
        session.clear()
        end_session = oauth.authgate.load_server_metadata()["end_session_endpoint"]
        query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": url_for("home", _external=True)})
        return redirect(f"{end_session}?{query}")

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A Flask app that signs its users in with AuthGate.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--issuer", default=os.environ.get("AUTHGATE_ISSUER", "http://localhost:5000"))
    parser.add_argument("--client-id", default=os.environ.get("AUTHGATE_CLIENT_ID", "demo"))
    parser.add_argument("--client-secret", default=os.environ.get("AUTHGATE_CLIENT_SECRET"))
    args = parser.parse_args()
    if not args.client_secret:
        parser.error("give the client's secret: AUTHGATE_CLIENT_SECRET=... or --client-secret")
    create_app(args.issuer.rstrip("/"), args.client_id, args.client_secret).run(host="127.0.0.1", port=args.port)
