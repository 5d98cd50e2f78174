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
