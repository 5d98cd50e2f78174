"""Minimal Django project around django-oauth-toolkit for the AuthGate benchmark.

Environment (run.sh sets these): DOT_PORT, DOT_DATABASE_URL (sqlite:///path or
postgresql://user@host:port/db), DOT_SECRET_KEY, DOT_OIDC_KEY_FILE (RSA private key, PEM),
DOT_BCRYPT_ROUNDS (user passwords, default 12), BENCH_CLIENTS (shared clients.json).
"""

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SHARED = json.loads(Path(os.environ.get("BENCH_CLIENTS", BASE_DIR.parent / "clients.json")).read_text())
PORT = int(os.environ.get("DOT_PORT", "8002"))
ISSUER = f"http://127.0.0.1:{PORT}"

SECRET_KEY = os.environ.get("DOT_SECRET_KEY", "dot-bench-not-secret-" + "x" * 40)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "oauth2_provider",
    "benchsite",
]
# Signed-cookie sessions: the same class as Flask's cookie session AuthGate uses (no DB row).
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "benchsite.urls"
WSGI_APPLICATION = "benchsite.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
LOGIN_URL = "/login"


def _database(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parts.path[1:] if parts.path.startswith("//") else parts.path,
            "CONN_MAX_AGE": None,  # keep each thread's connection, like SQLAlchemy's pool
            # Same pragmas as AuthGate (WAL, 5 s busy timeout, foreign keys); IMMEDIATE so
            # concurrent writer threads queue on the lock instead of failing.
            "OPTIONS": {
                "timeout": 5,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;",
            },
        }
    if parts.scheme in ("postgresql", "postgres"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "postgres",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 5432),
            "CONN_MAX_AGE": None,  # persistent connections, like SQLAlchemy's pool
        }
    raise ValueError(f"unsupported DOT_DATABASE_URL {url!r}")


DATABASES = {"default": _database(os.environ.get("DOT_DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

PASSWORD_HASHERS = [
    "benchsite.hashers.BenchBCryptPasswordHasher",  # user passwords (bcrypt, DOT_BCRYPT_ROUNDS)
    "benchsite.hashers.SHA256ClientSecretHasher",  # client secrets (CLIENT_SECRET_HASHER below)
]

_key_file = os.environ.get("DOT_OIDC_KEY_FILE")
OAUTH2_PROVIDER = {
    "CLIENT_SECRET_HASHER": "sha256_client_secret",
    "SCOPES": {
        "openid": "OpenID Connect",
        "profile": "Profile",
        "email": "Email",
        "roles": "Roles",
        "offline_access": "Refresh tokens",
        "api": "The bench API",
    },
    "DEFAULT_SCOPES": ["api"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": SHARED["access_token_ttl"],
    "ID_TOKEN_EXPIRE_SECONDS": SHARED["access_token_ttl"],
    "REFRESH_TOKEN_EXPIRE_SECONDS": SHARED["refresh_token_ttl"],
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,  # S256 only, like AuthGate
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,  # tokens stored as SHA-256, like AuthGate
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,  # iss in the authorization response
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": ISSUER,
    "OIDC_RSA_PRIVATE_KEY": Path(_key_file).read_text() if _key_file else "",
    "OAUTH2_VALIDATOR_CLASS": "benchsite.validators.BenchValidator",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False}},
}
