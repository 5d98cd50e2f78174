"""The admin console: clients (the 4-step wizard), roles, users and signing keys, in Jinja and HTMX."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from app.admin import people, signin, views, wizard  # noqa: E402, F401  (registers the routes)
