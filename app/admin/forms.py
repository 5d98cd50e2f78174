"""Console forms, and the wizard's steps, presets and one-line explanations.

Forms only parse input: every rule (what a valid client, role, user or password is) lives in
app/services and comes back as a ValidationError, shown next to its field.
"""

from dataclasses import dataclass

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)

from app.capabilities import (
    AUTH_METHODS,
    GRANT_TYPES,
    IDP_KINDS,
    MFA_POLICIES,
    SIGNING_ALGS,
    STANDARD_SCOPES,
    TOKEN_FORMATS,
)
from app.services import ValidationError
from app.services.mfa import POLICY_TEXT


def sentence(label: str, reason: str) -> str:
    """Turn a service reason ("is required") into what is shown under the field."""
    if reason.startswith(("is ", "must ", "cannot ", "has ", "does ")):
        return f"{label} {reason}."
    first = reason.split(" ", 1)[0]
    # Leave a leading identifier (client_credentials, 'x') as it is; capitalise a plain word.
    text = reason[0].upper() + reason[1:] if first.isalpha() else reason
    return text if text.endswith((".", ")")) else text + "."


def show_errors(form: FlaskForm, error: ValidationError, fallback: str | None = None) -> None:
    """Put each of the service's errors next to its field (or next to `fallback`)."""
    for name, reason in error.errors.items():
        key = name if name in form else fallback
        field = form[key] if key and key in form else None
        if field is None:
            form.form_errors.append(reason)
            continue
        field.errors = [*field.errors, sentence(str(field.label.text), reason)]


class ConsoleForm(FlaskForm):
    """Base of console forms; WTForms' `form_errors` holds errors that belong to no single field."""


class RoleForm(ConsoleForm):
    name = StringField("Name", render_kw={"placeholder": "ROLE_EDITOR", "spellcheck": "false", "autocomplete": "off"})
    description = StringField("Description", render_kw={"placeholder": "Can edit articles"})


class UserForm(ConsoleForm):
    username = StringField("Username", render_kw={"autocomplete": "off", "spellcheck": "false"})
    email = StringField("Email", render_kw={"type": "email", "autocomplete": "off"})
    first_name = StringField("First name", render_kw={"autocomplete": "off"})
    last_name = StringField("Last name", render_kw={"autocomplete": "off"})
    password = PasswordField("Password", render_kw={"autocomplete": "new-password"})
    no_password = BooleanField("No password — social login only")
    roles = SelectMultipleField("Roles", validate_choice=False)


class ProfileForm(ConsoleForm):
    email = StringField("Email", render_kw={"type": "email"})
    first_name = StringField("First name")
    last_name = StringField("Last name")
    email_verified = BooleanField("Email address is verified")


class PasswordForm(ConsoleForm):
    password = PasswordField("New password", render_kw={"autocomplete": "new-password"})
    no_password = BooleanField("No password — social login only")


class RolesForm(ConsoleForm):
    roles = SelectMultipleField("Roles", validate_choice=False)


class SelfServiceForm(ConsoleForm):
    """A client's self-service settings, on its page; named as the service names them."""

    allow_registration = BooleanField("Let people register")
    require_verified_email = BooleanField("Require a verified email to sign in")
    default_roles = SelectMultipleField("Default roles", validate_choice=False)


class MfaPolicyForm(ConsoleForm):
    """A client's MFA policy, on its page: a radio button per policy, checked by the service."""

    mfa_policy = StringField("Second factors")


class MailForm(ConsoleForm):
    """A button on the user page that emails the user a link (verification or password reset)."""


class EnabledForm(ConsoleForm):
    enabled = HiddenField()


class ConfirmForm(ConsoleForm):
    """A confirmation that names what it confirms (typed, for deleting a client)."""

    confirm = StringField("Confirm", render_kw={"autocomplete": "off", "spellcheck": "false"})


class ProviderForm(ConsoleForm):
    """An identity provider's settings, named as the service names them so its errors land next to each field."""

    type = HiddenField()
    slug = StringField("Slug", render_kw={"autocomplete": "off", "spellcheck": "false", "placeholder": "corp"})
    name = StringField("Display name", render_kw={"autocomplete": "off", "placeholder": "Corp SSO"})
    upstream_client_id = StringField("Client ID", render_kw={"autocomplete": "off", "spellcheck": "false"})
    # Write-only: a PasswordField is never rendered with its value, so the secret is never shown back.
    client_secret = PasswordField("Client secret", render_kw={"autocomplete": "new-password"})
    scopes = StringField("Scopes", render_kw={"autocomplete": "off", "spellcheck": "false"})
    issuer = StringField("Issuer URL", render_kw={"type": "url", "spellcheck": "false"})
    web_url = StringField("Web URL", render_kw={"type": "url", "spellcheck": "false"})
    api_url = StringField("API URL", render_kw={"type": "url", "spellcheck": "false"})
    # Their defaults (on, on, off) come from the service, as the others' do.
    enabled = BooleanField("Show it on the sign-in page now")
    auto_create = BooleanField("Create users on first sign-in")
    default_roles = SelectMultipleField("Default roles", validate_choice=False)
    link_verified_email = BooleanField("Link to an existing user with the same verified email")


def described(values: tuple[str, ...], texts: dict) -> dict:
    """The texts of what the server supports, in the order of `app.capabilities` (a missing one fails at import)."""
    return {value: texts[value] for value in values}


@dataclass(frozen=True)
class ProviderKind:
    title: str
    text: str
    # Who the admin registers this server with, in a sentence ("at GitHub", "at your provider").
    party: str
    # Where at that party the callback URL goes.
    register_at: str


PROVIDER_KINDS = described(
    IDP_KINDS,
    {
        "google": ProviderKind(
            "Google",
            "Google accounts, including Google Workspace.",
            "Google",
            "In the Google Cloud console: APIs & Services → Credentials → Create credentials → OAuth client ID "
            "(Web application), under Authorized redirect URIs.",
        ),
        "github": ProviderKind(
            "GitHub",
            "GitHub.com accounts, or your GitHub Enterprise Server's.",
            "GitHub",
            "On GitHub: Settings → Developer settings → OAuth Apps → New OAuth App, as the Authorization callback URL.",
        ),
        "oidc": ProviderKind(
            "OpenID Connect",
            "Any OpenID Connect provider, by its issuer URL: Keycloak, Okta, Microsoft Entra ID, Auth0 …",
            "your provider",
            "Register a confidential web application (authorization code flow) there and add this to its allowed "
            "redirect URIs.",
        ),
    },
)


# What an admin types to switch keys at once: the switch breaks relying parties' cached key sets.
SWITCH_WORD = "switch"


class RotateKeysForm(ConsoleForm):
    alg = SelectField("Algorithm", choices=[SelectChoice("", "Every algorithm"), *SIGNING_ALGS])
    now = BooleanField("Switch immediately (emergency)")
    confirm = StringField(f"Type {SWITCH_WORD} to confirm", render_kw={"autocomplete": "off", "spellcheck": "false"})

    def switch_confirmed(self) -> bool:
        """A rotation at once needs the word typed, as deleting a client needs its id; else say so at the field."""
        if not self.now.data or (self.confirm.data or "").strip().lower() == SWITCH_WORD:
            return True
        self.confirm.errors = [f"Type {SWITCH_WORD} to switch at once; nothing was changed."]
        return False


class RevokeKeyForm(ConfirmForm):
    """Revoking a key: its kid typed out; for the key signing now, consent to an immediate replacement."""

    replace = BooleanField("Replace it with a new key that signs at once")


# --- the client wizard ------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    fields: tuple[str, ...]


STEPS = (
    Step(1, "Basic info", ("client_id", "name", "description")),
    Step(2, "Capabilities", ("token_endpoint_auth_methods", "grant_types", "jwks")),
    Step(3, "URIs & scopes", ("redirect_uris", "post_logout_redirect_uris", "scopes")),
    Step(
        4,
        "Token settings",
        (
            "access_token_lifetime",
            "refresh_token_lifetime",
            "refresh_token_max_lifetime",
            "require_pkce",
            "token_format",
            "signing_alg",
            "require_consent",
            "allow_registration",
            "require_verified_email",
            "default_roles",
            "mfa_policy",
        ),
    ),
)
REVIEW = len(STEPS) + 1
LIST_FIELDS = ("token_endpoint_auth_methods", "grant_types", "redirect_uris", "post_logout_redirect_uris", "scopes")
FLAG_FIELDS = ("require_pkce", "require_consent", "allow_registration", "require_verified_email")
# Settings that mean something only with a grant type: the wizard leaves them out without it
# (a machine-to-machine client has no refresh tokens, no PKCE and no consent screen).
NEEDS_GRANT = {
    "refresh_token_lifetime": "refresh_token",
    "refresh_token_max_lifetime": "refresh_token",
    "require_pkce": "authorization_code",
    "require_consent": "authorization_code",
    "allow_registration": "authorization_code",
    "require_verified_email": "authorization_code",
    "default_roles": "authorization_code",
    "mfa_policy": "authorization_code",
}


def not_applicable(grant_types: list[str], errors=()) -> list[str]:
    """The settings that cannot apply with these grant types; one with an error stays, to be corrected."""
    return [name for name, grant in NEEDS_GRANT.items() if grant not in grant_types and name not in errors]


LABELS = {
    "client_id": "Client ID",
    "name": "Name",
    "description": "Description",
    "token_endpoint_auth_methods": "Authentication method",
    "grant_types": "Grant types",
    "jwks": "Public keys",
    "redirect_uris": "Redirect URIs",
    "post_logout_redirect_uris": "Post-logout redirect URIs",
    "scopes": "Scopes",
    "access_token_lifetime": "Access token lifetime",
    "refresh_token_lifetime": "Refresh token lifetime",
    "refresh_token_max_lifetime": "Refresh token maximum lifetime",
    "require_pkce": "PKCE",
    "token_format": "Token format",
    "signing_alg": "Signing algorithm",
    "require_consent": "Consent",
    "allow_registration": "Self-registration",
    "require_verified_email": "Verified email",
    "default_roles": "Default roles",
    "mfa_policy": "Second factors",
}

AUTH_METHOD_TEXT = described(
    AUTH_METHODS,
    {
        "client_secret_basic": (
            "Client secret (HTTP Basic)",
            "The app sends its secret in the Authorization header — the usual choice for server-side apps.",
        ),
        "client_secret_post": (
            "Client secret (form body)",
            "The app sends its secret in the token request's body, for libraries that cannot set headers.",
        ),
        "private_key_jwt": (
            "Private key JWT",
            "The app signs a short-lived JWT with its own private key; you register only its public keys.",
        ),
        "none": (
            "None — public client",
            "No secret, for browser and mobile apps that cannot keep one; PKCE protects the sign-in instead.",
        ),
    },
)


def _title_and_text(policy_text: str) -> tuple[str, str]:
    """Split a policy's text into an option card's title and sentence: ("Off", "Only a password …")."""
    title, text = policy_text.split(": ", 1)
    return title, text[0].upper() + text[1:]


MFA_POLICY_TEXT = {value: _title_and_text(POLICY_TEXT[value]) for value in MFA_POLICIES}

GRANT_TEXT = described(
    GRANT_TYPES,
    {
        "authorization_code": (
            "Authorization code",
            "Users sign in on AuthGate's page; the app gets a one-time code and exchanges it for tokens.",
        ),
        "refresh_token": (
            "Refresh token",
            "The app renews tokens without asking the user to sign in again; each refresh token works once.",
        ),
        "client_credentials": (
            "Client credentials",
            "The app gets tokens for itself, with no user involved — for services calling an API.",
        ),
    },
)
SCOPE_TEXT = described(
    STANDARD_SCOPES,
    {
        "openid": "Sign users in with OpenID Connect: the app receives an ID token saying who signed in.",
        "profile": "The user's name and username.",
        "email": "The user's email address and whether it is verified.",
        "roles": "The roles the user holds in this application.",
        "offline_access": "Lets the app ask for long-lived access while the user is away.",
    },
)
TOKEN_FORMAT_TEXT = described(
    TOKEN_FORMATS,
    {
        "jwt": ("JWT", "Self-contained and signed: your API checks it with AuthGate's public keys, without a call."),
        "opaque": ("Opaque", "A random string: your API asks AuthGate (introspection) each time; revoking is instant."),
    },
)
SIGNING_ALG_TEXT = described(
    SIGNING_ALGS,
    {
        "RS256": ("RS256", "RSA — understood by every library. The safe default."),
        "ES256": ("ES256", "ECDSA P-256 — smaller tokens, widely supported."),
        "EdDSA": ("EdDSA", "Ed25519 — modern and fast; check that your library supports it."),
    },
)


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    text: str
    fields: dict
    # Whether people sign in: then the user scopes (openid, profile, ...) make sense.
    user_scopes: bool = True


PRESETS = (
    Preset(
        "web",
        "Web application",
        "A server-side app (Django, Rails, Express, Flask …) that can keep a secret.",
        {
            "token_endpoint_auth_methods": ["client_secret_basic"],
            "grant_types": ["authorization_code", "refresh_token"],
            "require_pkce": "1",
        },
    ),
    Preset(
        "spa",
        "Single-page or mobile app",
        "Runs in the browser or on a phone, so it cannot keep a secret: a public client with PKCE.",
        {
            "token_endpoint_auth_methods": ["none"],
            "grant_types": ["authorization_code", "refresh_token"],
            "require_pkce": "1",
        },
    ),
    Preset(
        "m2m",
        "Machine to machine",
        "A backend service, job or script that calls an API as itself, with no user signing in.",
        {
            "token_endpoint_auth_methods": ["client_secret_basic"],
            "grant_types": ["client_credentials"],
        },
        user_scopes=False,
    ),
)
