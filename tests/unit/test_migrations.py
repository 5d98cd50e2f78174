"""The migrations build, remove and rebuild the schema on an empty database of each kind."""

import uuid

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from app.config import normalise_database_url
from app.extensions import db
from tests.helpers import PG_URL, make_app


@pytest.fixture(params=["sqlite", "postgresql"] if PG_URL else ["sqlite"])
def empty_database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"authgate_migrations_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalise_database_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(normalise_database_url(PG_URL)).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(empty_database_url):
    app = make_app(empty_database_url)
    expected = {t.name for t in db.metadata.sorted_tables}
    with app.app_context():
        upgrade()
        assert tables(db.engine) == expected
        downgrade(revision="base")
        assert tables(db.engine) == set()
        upgrade()
        assert tables(db.engine) == expected
        db.session.remove()
        db.engine.dispose()


WHEN = "2026-11-30 12:00:00+00:00"


def insert_client(conn, pk: int, client_id: str, refresh_lifetime: int = 86400) -> None:
    """A client row with only the columns of revision 0004 (later models have more)."""
    conn.execute(
        sa.text(
            "INSERT INTO clients (id, client_id, name, description, token_endpoint_auth_methods, grant_types,"
            " redirect_uris, post_logout_redirect_uris, scopes, access_token_lifetime, refresh_token_lifetime,"
            " require_pkce, token_format, signing_alg, require_consent, created_at, updated_at) VALUES"
            " (:pk, :client_id, 'x', '', '[]', '[]', '[]', '[]', '[]', 60, :lifetime, true, 'jwt', 'RS256',"
            " false, :when, :when)"
        ),
        {"pk": pk, "client_id": client_id, "lifetime": refresh_lifetime, "when": WHEN},
    )


def test_0005_migrates_existing_clients_and_refresh_tokens(empty_database_url):
    """refresh_token_lifetime stays the idle timeout, the maximum covers it, families end when their token does."""
    app = make_app(empty_database_url)
    when = "2026-11-30 12:00:00+00:00"
    with app.app_context():
        upgrade(revision="0004")
        conn = db.session.connection()
        for pk, client_id, lifetime in ((1, "short", 3600), (2, "long", 90 * 86400)):
            insert_client(conn, pk, client_id, refresh_lifetime=lifetime)
        conn.execute(
            sa.text(
                "INSERT INTO users (id, client_pk, sub, username, first_name, last_name, enabled, email_verified,"
                " created_at, updated_at) VALUES (1, 1, 's', 'alice', '', '', true, false, :when, :when)"
            ),
            {"when": when},
        )
        conn.execute(
            sa.text(
                "INSERT INTO refresh_tokens (id, token_hash, family_id, client_pk, user_id, scope, auth_time, amr,"
                " created_at, expires_at) VALUES (1, 'h', 'f', 1, 1, 'openid', 0, '[]', :when, :expires)"
            ),
            {"when": when, "expires": "2026-12-30 12:00:00+00:00"},
        )
        db.session.commit()
        upgrade()
        conn = db.session.connection()
        maxima = dict(conn.execute(sa.text("SELECT client_id, refresh_token_max_lifetime FROM clients")).all())
        assert maxima == {"short": 90 * 86400, "long": 90 * 86400}
        family_end, expires = conn.execute(sa.text("SELECT family_expires_at, expires_at FROM refresh_tokens")).one()
        assert family_end == expires
        db.session.commit()
        downgrade(revision="0004")
        db.session.remove()
        db.engine.dispose()


def index_names(table: str) -> set[str]:
    """The table's indexes, expression indexes too (SQLAlchemy's inspector skips those on SQLite)."""
    conn = db.session.connection()
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :table"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE tablename = :table"
    return set(conn.execute(sa.text(query), {"table": table}).scalars())


def test_0007_adds_the_audit_actor_to_existing_events_and_takes_it_away(empty_database_url):
    """Events recorded before 0007 have no actor; its indexes come and go with it; the events stay."""
    app = make_app(empty_database_url)
    with app.app_context():
        upgrade(revision="0006")
        conn = db.session.connection()
        conn.execute(
            sa.text("INSERT INTO audit_events (at, kind, username, detail) VALUES (:when, 'login_failed', 'x', '{}')"),
            {"when": "2026-12-01 12:00:00+00:00"},
        )
        db.session.commit()
        upgrade()
        inspector = sa.inspect(db.engine)
        assert "actor" in {column["name"] for column in inspector.get_columns("audit_events")}
        assert {"ix_audit_events_actor", "ix_audit_events_username"} <= index_names("audit_events")
        conn = db.session.connection()
        assert conn.execute(sa.text("SELECT kind, actor FROM audit_events")).all() == [("login_failed", None)]
        conn.execute(
            sa.text(
                "INSERT INTO audit_events (at, kind, actor, detail) VALUES (:when, 'user_created', 'cli:root', '{}')"
            ),
            {"when": "2026-12-02 12:00:00+00:00"},
        )
        # The username filter's lower(username) index is the one the page's query can use.
        found = conn.execute(sa.text("SELECT count(*) FROM audit_events WHERE lower(username) = 'x'")).scalar()
        assert found == 1
        db.session.commit()
        downgrade(revision="0006")
        inspector = sa.inspect(db.engine)
        assert "actor" not in {column["name"] for column in inspector.get_columns("audit_events")}
        assert not {"ix_audit_events_actor", "ix_audit_events_username"} & index_names("audit_events")
        kinds = db.session.connection().execute(sa.text("SELECT kind FROM audit_events ORDER BY id")).scalars().all()
        assert kinds == ["login_failed", "user_created"]
        db.session.remove()
        db.engine.dispose()


def insert_roles(conn, client_pk: int, *names: str) -> None:
    for name in names:
        conn.execute(
            sa.text("INSERT INTO roles (client_pk, name, description) VALUES (:pk, :name, '')"),
            {"pk": client_pk, "name": name},
        )


def test_0008_names_roles_that_differ_only_in_case_then_makes_them_unique(empty_database_url, capfd):
    """Roles made before 0008 may clash; the upgrade stops, says which, and passes once they are renamed."""
    app = make_app(empty_database_url)
    with app.app_context():
        upgrade(revision="0007")
        conn = db.session.connection()
        shop, blog = 1, 2
        insert_client(conn, shop, "shop")
        insert_client(conn, blog, "blog")
        insert_roles(conn, shop, "ROLE_ADMIN", "role_admin", "Role_Admin", "ROLE_VIEWER")
        insert_roles(conn, blog, "ROLE_ADMIN", "ROLE_EDITOR", "role_editor")
        db.session.commit()

        capfd.readouterr()
        with pytest.raises(SystemExit):  # Flask-Migrate logs the error and exits 1, as `flask init` does
            upgrade()
        message = capfd.readouterr().err
        assert (
            "differ only in case: blog: ROLE_EDITOR, role_editor; shop: ROLE_ADMIN, Role_Admin, role_admin." in message
        )
        assert "Rename or delete all but one of each" in message

        db.session.execute(sa.text("DELETE FROM roles WHERE name IN ('role_admin', 'Role_Admin', 'role_editor')"))
        db.session.commit()
        upgrade()
        conn = db.session.connection()
        with pytest.raises(sa.exc.IntegrityError):
            insert_roles(conn, shop, "role_viewer")
        db.session.rollback()
        downgrade(revision="0007")
        insert_roles(db.session.connection(), shop, "role_viewer")  # without 0008, case told roles apart
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def test_0009_leaves_existing_clients_closed_and_their_roles_not_default(empty_database_url):
    """Self-registration is off and no role is a default one until an admin says otherwise."""
    app = make_app(empty_database_url)
    with app.app_context():
        upgrade(revision="0008")
        conn = db.session.connection()
        insert_client(conn, 1, "shop")
        insert_roles(conn, 1, "ROLE_VIEWER")
        db.session.commit()
        upgrade()
        conn = db.session.connection()
        flags = conn.execute(sa.text("SELECT allow_registration, require_verified_email FROM clients")).one()
        assert tuple(flags) == (False, False)  # SQLite answers 0, which equals False
        assert conn.execute(sa.text("SELECT is_default FROM roles")).scalar_one() == False  # noqa: E712
        assert "link_tokens" in tables(db.engine)
        db.session.commit()
        downgrade(revision="0008")
        assert "link_tokens" not in tables(db.engine)
        names = {column["name"] for column in sa.inspect(db.engine).get_columns("clients")}
        assert "allow_registration" not in names
        db.session.remove()
        db.engine.dispose()
