"""A relying party in 40 lines: a Flask app that signs its users in with AuthGate.

    flask --app wsgi clients create --client-id demo --name "Demo app" \
        --grant-type authorization_code --grant-type refresh_token \
        --redirect-uri http://127.0.0.1:8765/callback --post-logout-redirect-uri http://127.0.0.1:8765/ --json
    AUTHGATE_CLIENT_SECRET=agcs_... .venv/bin/python examples/flask_rp.py   # then open http://127.0.0.1:8765/

It uses only discovery: Authlib's Flask client reads /.well-known/openid-configuration and does
PKCE, state, nonce and ID token validation itself.
"""

import os
from urllib.parse import urlencode

from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, session, url_for

ISSUER = os.environ.get("AUTHGATE_ISSUER", "http://localhost:5000")
app = Flask(__name__)
app.secret_key = os.urandom(32)
oauth = OAuth(app)
oauth.register(
    "authgate",
    client_id=os.environ.get("AUTHGATE_CLIENT_ID", "demo"),
    client_secret=os.environ["AUTHGATE_CLIENT_SECRET"],
    server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
    client_kwargs={"scope": "openid profile email roles", "code_challenge_method": "S256"},
)


@app.get("/")
def home():
    user = session.get("user")
    if not user:
        return '<a href="/login">Sign in with AuthGate</a>'
    return f"Hello {user['name']} ({user['sub']}), roles: {', '.join(user['roles'])} <a href='/logout'>Sign out</a>"


@app.get("/login")
def login():
    return oauth.authgate.authorize_redirect(url_for("callback", _external=True))


@app.get("/callback")
def callback():
    token = oauth.authgate.authorize_access_token()  # checks state, PKCE, the ID token's signature and nonce
    session["user"], session["id_token"] = token["userinfo"], token["id_token"]
    return redirect("/")


@app.get("/logout")
def logout():
    id_token = session.pop("id_token", "")
    session.clear()
    end_session = oauth.authgate.load_server_metadata()["end_session_endpoint"]
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": url_for("home", _external=True)})
    return redirect(f"{end_session}?{query}")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8765)
