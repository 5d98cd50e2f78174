"""Fixtures: every database test runs on SQLite and, when AUTHGATE_TEST_DATABASE_URL is set, on PostgreSQL.

The schema is built once per database from the Alembic migrations (with signing keys made by
`ensure_keys`); each test then starts from that state: a fresh copy of the SQLite file, or
truncated PostgreSQL tables with the template keys put back.
"""

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

# Helper modules are not test modules, so pytest would not rewrite their asserts: register them
# before anything imports them, so a failing helper assert reports its values as a test's would.
pytest.register_assert_rewrite(
    "tests.helpers", "tests.integration.helpers", "tests.e2e.helpers", "tests.social_fakes", "tests.mailbox"
)

import sqlalchemy as sa  # noqa: E402

from app.config import normalise_database_url  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import SigningKey  # noqa: E402
from tests.helpers import PG_URL, make_app, redis_settings  # noqa: E402

DATABASES = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]

# Hypothesis: "ci" (the default) keeps each property test to a bounded number of examples, with no
# per-example deadline (PostgreSQL round trips vary) and no example database written to the work
# tree; "fuzz" (HYPOTHESIS_PROFILE=fuzz) digs longer. The property tests take the function-scoped
# `app`, on purpose: one app (and database) for all of a test's examples.
settings.register_profile(
    "ci", max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.register_profile(
    "fuzz", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def migrate_and_seed(database_url: str) -> list[dict]:
    """Run every migration and make signing keys; return the key rows."""
    from flask_migrate import upgrade

    from app.services.keys import ensure_keys

    app = make_app(database_url)
    with app.app_context():
        upgrade()
        ensure_keys()
        rows = [
            {c.name: getattr(k, c.name) for c in SigningKey.__table__.columns if c.name != "id"}
            for k in db.session.scalars(sa.select(SigningKey))
        ]
        db.session.remove()
        db.engine.dispose()
    return rows


class Database:
    """A migrated database of one kind that hands each test a clean copy."""

    def __init__(self, kind: str, tmp_path_factory):
        self.kind = kind
        if kind == "sqlite":
            self.template = tmp_path_factory.mktemp("template") / "authgate.db"
            self.key_rows = migrate_and_seed(f"sqlite:///{self.template}")
        else:
            self.url = PG_URL
            # Fail loudly (not skip) when the configured server is unreachable.
            engine = sa.create_engine(normalise_database_url(PG_URL))
            with engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
            engine.dispose()
            self.key_rows = migrate_and_seed(PG_URL)

    def fresh_url(self, tmp_path) -> str:
        if self.kind == "sqlite":
            target = tmp_path / "authgate.db"
            shutil.copyfile(self.template, target)
            return f"sqlite:///{target}"
        return self.url

    def reset(self, app) -> None:
        """Empty every table and put the template signing keys back (PostgreSQL)."""
        if self.kind == "sqlite":
            return
        with app.app_context():
            tables = ", ".join(t.name for t in db.metadata.sorted_tables)
            db.session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.execute(sa.insert(SigningKey), self.key_rows)
            db.session.commit()
            db.session.remove()


@pytest.fixture(scope="session", params=DATABASES)
def database(request, tmp_path_factory):
    return Database(request.param, tmp_path_factory)


@pytest.fixture
def app(database, tmp_path, request):
    """The app on a fresh database; `@pytest.mark.settings(...)` and `@pytest.mark.redis` add settings."""
    marker = request.node.get_closest_marker("settings")
    overrides = dict(marker.kwargs) if marker else {}
    if request.node.get_closest_marker("redis"):
        overrides.update(redis_settings())
    application = make_app(database.fresh_url(tmp_path), **overrides)
    database.reset(application)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_client(app):
    """Create a client through the service; return (client, secret)."""
    from app.services import clients

    counter = iter(range(1, 10_000))

    def factory(**fields):
        fields.setdefault("client_id", f"client-{next(counter)}")
        fields.setdefault("name", fields["client_id"].title())
        fields.setdefault("redirect_uris", ["http://127.0.0.1:8765/cb"])
        return clients.create_client(**fields)

    return factory


@pytest.fixture
def make_role(app):
    from app.services import roles

    def factory(client_id, name="ROLE_VIEWER", description=""):
        return roles.create_role(client_id, name, description)

    return factory


@pytest.fixture
def make_user(app):
    from app.services import users

    def factory(client_id, username="alice", password="correct horse", **fields):
        fields.setdefault("email", f"{username}@example.com")
        return users.create_user(client_id, username, password=password, **fields)

    return factory


# The stand-ins for Google and GitHub, real HTTP servers on 127.0.0.1 (integration and browser tests).
@pytest.fixture
def fake_google():
    from tests.social_fakes import FakeOIDC  # it imports this module, so not at the top

    fake = FakeOIDC()
    yield fake
    fake.stop()


@pytest.fixture
def fake_github():
    from tests.social_fakes import FakeGitHub

    fake = FakeGitHub()
    yield fake
    fake.stop()


# A real SMTP server on loopback for the whole run; each test that asks for `mailbox` starts with it
# empty and its app sending there (set before the app's first request; the config is read per message).
@pytest.fixture(scope="session")
def smtp_server():
    from tests.mailbox import Mailbox

    box = Mailbox()
    yield box
    box.stop()


@pytest.fixture
def mailbox(smtp_server, app):
    smtp_server.clear()
    app.config["AUTHGATE_SMTP_URL"] = smtp_server.url
    app.config["AUTHGATE_MAIL_FROM"] = "AuthGate <no-reply@authgate.test>"
    yield smtp_server
    # Background sends (reset requests) finish before the app's database goes away.
    with app.app_context():
        from app.services.mail import outbox

        outbox().wait()
