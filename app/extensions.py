"""Extension instances, bound to an app in create_app()."""

from typing import TYPE_CHECKING, cast

import sqlalchemy as sa
from authlib.integrations.flask_oauth2 import AuthorizationServer
from flask import current_app
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase
from werkzeug.local import LocalProxy

# Named constraints let Alembic drop and recreate them the same way on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# Objects stay readable after a commit: a request that commits and then reads what it wrote
# (a sign-in, a token response) does not query the rows again.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

# Models subclass this: it is db.Model. Flask-SQLAlchemy builds db.Model at run time, so a type
# checker cannot use the attribute as a base class; it sees the class db.Model is made of instead.
if TYPE_CHECKING:
    from flask_sqlalchemy.model import Model as _FlaskModel

    class Model(Base, _FlaskModel):
        pass

else:
    Model = db.Model
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, minus the work on requests that carry no cookie (API calls)."""

    def open_session(self, app, request):
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


# Authlib's server is built per app in app/oauth/server.py (grants are registered on it once).
authorization = cast(AuthorizationServer, LocalProxy(lambda: current_app.extensions["authgate_authorization"]))
