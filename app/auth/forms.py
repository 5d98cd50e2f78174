"""Forms of the hosted pages."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    rid = HiddenField()
    username = StringField(
        "Username or email",
        validators=[DataRequired("Enter your username."), Length(max=254)],
        render_kw={"autocomplete": "username", "autofocus": True, "spellcheck": "false"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )


class ConsentForm(FlaskForm):
    rid = HiddenField()


class LogoutForm(FlaskForm):
    pass


class LinkForm(LoginForm):
    """Sign in to an existing account once to link an upstream account to it."""


class SeparateAccountForm(FlaskForm):
    rid = HiddenField()
