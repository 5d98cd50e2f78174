"""The admin console in Jinja and HTMX: clients (the 4-step wizard), roles, users, identity providers, keys."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from app.admin import audit, idps, people, sessions, signin, views, wizard  # noqa: E402, F401  (registers the routes)
