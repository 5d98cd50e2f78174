"""The OAuth 2.1 / OpenID Connect protocol: Authlib wiring and the JSON machine endpoints. Never imports the UI."""

from flask import Blueprint

bp = Blueprint("oauth", __name__)

from app.oauth import views  # noqa: E402, F401  (registers the routes)
