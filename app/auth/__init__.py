"""Hosted pages: the authorization endpoint, sign-in, consent, sign-out, social login and the account page."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import account, authorize, logout, mfa, selfservice, social, views  # noqa: E402, F401  (registers the routes)
