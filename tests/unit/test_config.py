"""Settings from the environment."""

import pytest

from app.config import ConfigError, load, normalise_database_url

KEY = "k" * 40


def test_defaults(tmp_path):
    config = load(str(tmp_path), env={"AUTHGATE_SECRET_KEY": KEY})
    assert config["AUTHGATE_ISSUER"] == "http://localhost:5000"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'authgate.db'}"
    assert config["AUTHGATE_BCRYPT_ROUNDS"] == 12


def test_without_an_issuer_development_follows_the_port(tmp_path):
    """`make run PORT=5201` sets AUTHGATE_PORT: the console's sign-in must come back to port 5201."""
    config = load(str(tmp_path), env={"AUTHGATE_SECRET_KEY": KEY, "AUTHGATE_PORT": "5201"})
    assert config["AUTHGATE_ISSUER"] == "http://localhost:5201"


def test_a_set_issuer_wins_over_the_port(tmp_path):
    env = {"AUTHGATE_SECRET_KEY": KEY, "AUTHGATE_PORT": "5201", "AUTHGATE_ISSUER": "https://id.example.com/"}
    assert load(str(tmp_path), env=env)["AUTHGATE_ISSUER"] == "https://id.example.com"
    production = {**env, "AUTHGATE_ENV": "production"}
    assert load(str(tmp_path), env=production)["AUTHGATE_ISSUER"] == "https://id.example.com"


def test_the_session_cookie_is_ours_and_host_only_over_https(tmp_path):
    plain = load(str(tmp_path), env={"AUTHGATE_SECRET_KEY": KEY})
    assert (plain["SESSION_COOKIE_NAME"], plain["SESSION_COOKIE_SECURE"]) == ("authgate_session", False)
    https = load(str(tmp_path), env={"AUTHGATE_SECRET_KEY": KEY, "AUTHGATE_ISSUER": "https://id.example.com"})
    assert (https["SESSION_COOKIE_NAME"], https["SESSION_COOKIE_SECURE"]) == ("__Host-authgate_session", True)
    assert (https["SESSION_COOKIE_PATH"], https["SESSION_COOKIE_DOMAIN"]) == ("/", None)


def test_development_generates_and_keeps_a_secret_key(tmp_path):
    first = load(str(tmp_path), env={})["SECRET_KEY"]
    assert len(first) >= 32
    assert load(str(tmp_path), env={})["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTHGATE_ENV": "production"}, "AUTHGATE_SECRET_KEY is required"),
        ({"AUTHGATE_ENV": "production", "AUTHGATE_SECRET_KEY": KEY}, "AUTHGATE_ISSUER is required"),
        ({"AUTHGATE_SECRET_KEY": KEY, "AUTHGATE_PORT": "70000"}, "AUTHGATE_PORT must be between 1 and 65535"),
        ({"AUTHGATE_SECRET_KEY": "short"}, "at least 32 characters"),
        ({"AUTHGATE_SECRET_KEY": KEY, "AUTHGATE_BCRYPT_ROUNDS": "3"}, "between 4 and 16"),
        ({"AUTHGATE_SECRET_KEY": KEY, "AUTHGATE_BCRYPT_ROUNDS": "many"}, "must be an integer"),
        ({"AUTHGATE_SECRET_KEY": KEY, "AUTHGATE_ISSUER": "localhost:5000"}, "http(s) URL"),
        ({"AUTHGATE_ENV": "staging"}, "development, production or testing"),
    ],
)
def test_bad_settings_are_named(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(str(tmp_path), env=env)


def test_postgres_urls_use_psycopg3():
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"
