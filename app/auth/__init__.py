"""Hosted pages: the authorization endpoint, sign-in, consent, sign-out and social login."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import authorize, logout, selfservice, social, views  # noqa: E402, F401  (registers the routes)
