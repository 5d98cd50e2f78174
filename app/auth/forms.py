"""Forms of the hosted pages."""

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from app.services import ValidationError as ServiceValidationError


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


# --- self-service: registration, verification, password reset ----------------------------------


def sentence(label: str, reason: str) -> str:
    """A service's reason ("is required") as the sentence shown under its field."""
    if label and reason.startswith(("is ", "must ", "cannot ")):
        return f"{label} {reason}."
    text = reason[:1].upper() + reason[1:]
    return text if text.endswith(".") else text + "."


def show_errors(form: FlaskForm, error: ServiceValidationError) -> None:
    """Put each of the service's reasons next to its field, as a sentence; others above the form."""
    for name, reason in error.errors.items():
        field = form._fields.get(name)
        if field is None:
            form.form_errors.append(sentence("", reason))
        else:
            field.errors = [*field.errors, sentence(str(field.label.text), reason)]


class RegisterForm(FlaskForm):
    rid = HiddenField()
    username = StringField(
        "Username",
        validators=[
            DataRequired("Choose a username."),
            Length(max=64, message="Username must be at most 64 characters."),
            no_nul,
        ],
        render_kw={"autocomplete": "username", "autofocus": True, "spellcheck": "false", "autocapitalize": "none"},
    )
    email = EmailField(
        "Email",
        validators=[
            DataRequired("Enter your email address."),
            Length(max=254, message="Email must be at most 254 characters."),
            no_nul,
        ],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )
    first_name = StringField(
        "First name",
        validators=[Length(max=100, message="First name must be at most 100 characters."), no_nul],
        render_kw={"autocomplete": "given-name"},
    )
    last_name = StringField(
        "Last name",
        validators=[Length(max=100, message="Last name must be at most 100 characters."), no_nul],
        render_kw={"autocomplete": "family-name"},
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired("Choose a password."),
            Length(max=1024, message="Password must be at most 72 bytes."),
            no_nul,
        ],
        description="At least 8 characters.",
        render_kw={"autocomplete": "new-password"},
    )


class ResendForm(FlaskForm):
    """Send the verification link again (the account is the one this browser registered or signed in as)."""


class VerifyForm(FlaskForm):
    rid = HiddenField()


class ForgotForm(FlaskForm):
    rid = HiddenField()
    login = StringField(
        "Username or email",
        validators=[
            DataRequired("Enter your username or email address."),
            Length(max=254, message="No account has a name this long."),
            no_nul,
        ],
        render_kw={"autocomplete": "username", "autofocus": True, "spellcheck": "false", "autocapitalize": "none"},
    )


class ResetForm(FlaskForm):
    rid = HiddenField()
    password = PasswordField(
        "New password",
        validators=[
            DataRequired("Choose a new password."),
            Length(max=1024, message="Password must be at most 72 bytes."),
            no_nul,
        ],
        description="At least 8 characters.",
        render_kw={"autocomplete": "new-password", "autofocus": True},
    )
    password_confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired("Repeat the new password."), EqualTo("password", "The two passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )
