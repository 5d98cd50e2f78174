"""Forms of the hosted pages."""

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError


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


# --- the account page ------------------------------------------------------------------------


class ProfileForm(FlaskForm):
    first_name = StringField(
        "First name",
        validators=[Length(max=100, message="Use at most 100 characters."), no_nul],
        render_kw={"autocomplete": "given-name"},
    )
    last_name = StringField(
        "Last name",
        validators=[Length(max=100, message="Use at most 100 characters."), no_nul],
        render_kw={"autocomplete": "family-name"},
    )


class EmailForm(FlaskForm):
    email = EmailField(
        "New email address",
        validators=[DataRequired("Enter the new address."), Length(max=254), no_nul],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=1024), no_nul],
        render_kw={"autocomplete": "current-password"},
    )
    password = PasswordField(
        "New password",
        validators=[DataRequired("Enter a new password."), Length(max=1024), no_nul],
        render_kw={"autocomplete": "new-password"},
    )
    password_confirm = PasswordField(
        "New password again",
        validators=[DataRequired("Enter the new password again."), EqualTo("password", "The passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class AccountActionForm(FlaskForm):
    """A button of the account page (resend, unlink, sign out): its CSRF token is all it carries."""
