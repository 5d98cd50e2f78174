"""Forms of the hosted pages."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, ValidationError


def no_nul(form, field) -> None:
    """No one types a NUL, and PostgreSQL cannot compare text holding one: refuse it as invalid input."""
    if field.data and "\x00" in field.data:
        raise ValidationError("This field cannot hold a NUL character.")


class LoginForm(FlaskForm):
    rid = HiddenField()
    username = StringField(
        "Username or email",
        validators=[DataRequired("Enter your username."), Length(max=254), no_nul],
        render_kw={"autocomplete": "username", "autofocus": True, "spellcheck": "false"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=1024), no_nul],
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
