"""Settings from AUTHGATE_* environment variables."""

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 5000
SESSION_COOKIE = "authgate_session"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which and why."""


def _int(env, name, default, low, high):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the common short form."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secret_key(env, instance_path: Path, environment: str) -> str:
    key = env.get("AUTHGATE_SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ConfigError("AUTHGATE_SECRET_KEY must be at least 32 characters")
        return key
    if environment == "production":
        raise ConfigError("AUTHGATE_SECRET_KEY is required when AUTHGATE_ENV=production")
    # Development: keep one generated key in instance/ so sessions and the
    # encrypted signing keys survive a restart.
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def _issuer(env, environment: str, overrides: dict) -> str:
    """The public base URL. Outside production an unset AUTHGATE_ISSUER follows the port the
    development server listens on (AUTHGATE_PORT, which `make run` sets from PORT), so the
    console's sign-in comes back to the server that sent it; production must say its address."""
    issuer = overrides.get("AUTHGATE_ISSUER") or env.get("AUTHGATE_ISSUER")
    if not issuer:
        if environment == "production":
            raise ConfigError("AUTHGATE_ISSUER is required when AUTHGATE_ENV=production (e.g. https://id.example.com)")
        issuer = f"http://localhost:{_int(env, 'AUTHGATE_PORT', DEFAULT_PORT, 1, 65535)}"
    issuer = issuer.rstrip("/")
    if not issuer.startswith(("http://", "https://")):
        raise ConfigError(f"AUTHGATE_ISSUER must be an http(s) URL, got {issuer!r}")
    return issuer


SMTP_SCHEMES = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}


def parse_smtp_url(url: str) -> dict:
    """The parts of an AUTHGATE_SMTP_URL: scheme, host, port, and the user and password if any."""
    parts = urlsplit(url)
    if parts.scheme not in SMTP_SCHEMES:
        raise ConfigError(
            f"AUTHGATE_SMTP_URL must start with smtp://, smtps:// or smtp+starttls://, got {parts.scheme!r}"
        )
    try:
        port = parts.port or SMTP_SCHEMES[parts.scheme]
    except ValueError:
        raise ConfigError("AUTHGATE_SMTP_URL has a port that is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ConfigError("AUTHGATE_SMTP_URL names no host (smtp://host:port)")
    return {
        "scheme": parts.scheme,
        "host": parts.hostname,
        "port": port,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }


def _smtp_url(url: str | None) -> str | None:
    if url:
        parse_smtp_url(url)
    return url


def _session_cookie(issuer: str) -> dict:
    """Our own cookie name, so another application on the same host (cookies ignore ports) does not
    overwrite it; over https the `__Host-` prefix, which browsers accept only as Secure, Path=/ and
    without Domain, so no subdomain can set or shadow it."""
    secure = issuer.startswith("https://")
    return {
        "SESSION_COOKIE_NAME": f"__Host-{SESSION_COOKIE}" if secure else SESSION_COOKIE,
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }


def engine_options(database_url: str) -> dict:
    """SQL parameters never appear in error messages (they may be token hashes); PostgreSQL
    connections give up after 5 s instead of the operating system's minutes."""
    options: dict = {"hide_parameters": True}
    if database_url.startswith("postgres"):
        options["connect_args"] = {"connect_timeout": 5}
    return options


def load(instance_path: str, env=None, overrides=None) -> dict:
    """Build the Flask config mapping from the environment; `overrides` win over it."""
    env = os.environ if env is None else env
    overrides = overrides or {}
    instance = Path(instance_path)
    environment = env.get("AUTHGATE_ENV", "development")
    if environment not in ("development", "production", "testing"):
        raise ConfigError(f"AUTHGATE_ENV must be development, production or testing, got {environment!r}")
    database_url = env.get("AUTHGATE_DATABASE_URL") or f"sqlite:///{instance / 'authgate.db'}"
    secret_key = overrides.get("SECRET_KEY") or _secret_key(env, instance, environment)
    issuer = _issuer(env, environment, overrides)
    return {
        "AUTHGATE_ENV": environment,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url),
        # Seconds `flask init` waits for an unreachable database before giving up (make serve: 30).
        "AUTHGATE_DB_WAIT_SECONDS": _int(env, "AUTHGATE_DB_WAIT_SECONDS", 0, 0, 600),
        "AUTHGATE_ISSUER": issuer,
        "AUTHGATE_ADMIN_PASSWORD": env.get("AUTHGATE_ADMIN_PASSWORD") or None,
        # bcrypt cost for user passwords; hashes are upgraded on login when it changes.
        "AUTHGATE_BCRYPT_ROUNDS": _int(env, "AUTHGATE_BCRYPT_ROUNDS", 12, 4, 16),
        # JWKS Cache-Control max-age; a new key is published this long before it signs.
        "AUTHGATE_JWKS_MAX_AGE": _int(env, "AUTHGATE_JWKS_MAX_AGE", 600, 0, 86400),
        # How often a worker re-reads the signing keys from the database.
        "AUTHGATE_KEY_REFRESH_SECONDS": _int(env, "AUTHGATE_KEY_REFRESH_SECONDS", 30, 0, 3600),
        # A new signing key is published by the server itself when the active one is this many days old (0: never).
        "AUTHGATE_KEY_ROTATION_DAYS": _int(env, "AUTHGATE_KEY_ROTATION_DAYS", 90, 0, 3650),
        # How often the serving workers purge what has expired, one of them at a time (0: never; use `flask purge`).
        "AUTHGATE_MAINTENANCE_SECONDS": _int(env, "AUTHGATE_MAINTENANCE_SECONDS", 3600, 0, 7 * 86400),
        # Audit events older than this many days are purged with the rest (0: keep them forever).
        "AUTHGATE_AUDIT_RETENTION_DAYS": _int(env, "AUTHGATE_AUDIT_RETENTION_DAYS", 90, 0, 36500),
        # How long a worker keeps a client it looked up; other workers see client changes this late.
        "AUTHGATE_CLIENT_CACHE_SECONDS": _int(env, "AUTHGATE_CLIENT_CACHE_SECONDS", 5, 0, 300),
        # Token, introspection and userinfo requests of a plain shape skip Flask (app/oauth/front.py); 0: they do not.
        "AUTHGATE_FRONT": _int(env, "AUTHGATE_FRONT", 1, 0, 1),
        # How long a sign-in lasts in a browser before the user must sign in again.
        "AUTHGATE_SESSION_LIFETIME": _int(env, "AUTHGATE_SESSION_LIFETIME", 10 * 3600, 300, 30 * 86400),
        # How long a sign-in lasts without use (sign-in, authorization, refresh of its tokens).
        "AUTHGATE_SESSION_IDLE_SECONDS": _int(env, "AUTHGATE_SESSION_IDLE_SECONDS", 1800, 60, 30 * 86400),
        # Number of reverse proxies in front whose X-Forwarded-* headers are trusted.
        "AUTHGATE_TRUSTED_PROXIES": _int(env, "AUTHGATE_TRUSTED_PROXIES", 0, 0, 5),
        # Seconds to wait for an upstream identity provider (Google, GitHub, OIDC) before giving up.
        "AUTHGATE_UPSTREAM_TIMEOUT": _int(env, "AUTHGATE_UPSTREAM_TIMEOUT", 5, 1, 60),
        # Shared counters for brute-force protection (redis://host:port/db); unset: each worker counts alone.
        "AUTHGATE_REDIS_URL": env.get("AUTHGATE_REDIS_URL") or None,
        # Prefix of every key AuthGate writes to Redis (several deployments may share one Redis).
        "AUTHGATE_REDIS_PREFIX": env.get("AUTHGATE_REDIS_PREFIX") or "authgate",
        # Sign-in lock (Keycloak's brute-force detection): after this many failures for one name (0: never lock)...
        "AUTHGATE_LOCKOUT_FAILURES": _int(env, "AUTHGATE_LOCKOUT_FAILURES", 10, 0, 1000),
        # ...each further failure locks it for this many seconds times (failures // AUTHGATE_LOCKOUT_FAILURES)...
        "AUTHGATE_LOCKOUT_WAIT_SECONDS": _int(env, "AUTHGATE_LOCKOUT_WAIT_SECONDS", 60, 1, 86400),
        # ...but never longer than this...
        "AUTHGATE_LOCKOUT_MAX_WAIT_SECONDS": _int(env, "AUTHGATE_LOCKOUT_MAX_WAIT_SECONDS", 900, 1, 7 * 86400),
        # ...and the failures are forgotten this long after the first (or at a successful sign-in).
        "AUTHGATE_LOCKOUT_RESET_SECONDS": _int(env, "AUTHGATE_LOCKOUT_RESET_SECONDS", 12 * 3600, 60, 30 * 86400),
        # Failed sign-ins allowed from one address, across accounts, per window (0: no limit).
        "AUTHGATE_SIGNIN_ADDRESS_FAILURES": _int(env, "AUTHGATE_SIGNIN_ADDRESS_FAILURES", 50, 0, 100000),
        "AUTHGATE_SIGNIN_ADDRESS_WINDOW": _int(env, "AUTHGATE_SIGNIN_ADDRESS_WINDOW", 600, 1, 86400),
        # Failed client authentications (token, introspection, revocation) per client_id and address...
        "AUTHGATE_CLIENT_AUTH_FAILURES": _int(env, "AUTHGATE_CLIENT_AUTH_FAILURES", 10, 0, 100000),
        # ...and per address across client_ids, per window (0: no limit).
        "AUTHGATE_CLIENT_AUTH_ADDRESS_FAILURES": _int(env, "AUTHGATE_CLIENT_AUTH_ADDRESS_FAILURES", 50, 0, 100000),
        "AUTHGATE_CLIENT_AUTH_WINDOW": _int(env, "AUTHGATE_CLIENT_AUTH_WINDOW", 300, 1, 86400),
        # Passwords one worker hashes at once (addresses with recent failures share one of them)...
        "AUTHGATE_HASH_SLOTS": _int(env, "AUTHGATE_HASH_SLOTS", 4, 1, 64),
        # ...and how long a sign-in from a clean address waits for one before it gets a 503.
        "AUTHGATE_HASH_WAIT_SECONDS": _int(env, "AUTHGATE_HASH_WAIT_SECONDS", 5, 0, 60),
        # Changing one's email, second factors or linked accounts needs a sign-in at most this old.
        "AUTHGATE_RECENT_SIGN_IN_SECONDS": _int(env, "AUTHGATE_RECENT_SIGN_IN_SECONDS", 900, 60, 86400),
        # Outgoing mail for verification and reset links: smtp://, smtps:// or smtp+starttls://[user:password@]host[:port].
        "AUTHGATE_SMTP_URL": _smtp_url(env.get("AUTHGATE_SMTP_URL") or None),
        # The From address of that mail (default: no-reply at the issuer's host).
        "AUTHGATE_MAIL_FROM": env.get("AUTHGATE_MAIL_FROM") or None,
        # Seconds to wait for the SMTP server before telling the user to try again.
        "AUTHGATE_SMTP_TIMEOUT": _int(env, "AUTHGATE_SMTP_TIMEOUT", 10, 1, 120),
        # How long an emailed password-reset link works...
        "AUTHGATE_RESET_LINK_MINUTES": _int(env, "AUTHGATE_RESET_LINK_MINUTES", 30, 5, 24 * 60),
        # ...and an email-verification link.
        "AUTHGATE_VERIFY_LINK_HOURS": _int(env, "AUTHGATE_VERIFY_LINK_HOURS", 24, 1, 30 * 24),
        # Registrations, and reset requests, allowed from one address per hour (0: no limit)...
        "AUTHGATE_REGISTER_ADDRESS_LIMIT": _int(env, "AUTHGATE_REGISTER_ADDRESS_LIMIT", 10, 0, 100000),
        "AUTHGATE_FORGOT_ADDRESS_LIMIT": _int(env, "AUTHGATE_FORGOT_ADDRESS_LIMIT", 10, 0, 100000),
        # ...and messages sent to one account per hour, so nobody can flood a mailbox through us.
        "AUTHGATE_MAIL_ACCOUNT_LIMIT": _int(env, "AUTHGATE_MAIL_ACCOUNT_LIMIT", 5, 0, 1000),
        # Worker processes serving this app (make serve sets it); several without Redis earn a warning.
        "AUTHGATE_WORKERS": _int(env, "AUTHGATE_WORKERS", 1, 1, 1024),
        **_session_cookie(issuer),
        "WTF_CSRF_TIME_LIMIT": None,
    }
