"""What this server supports: the one list of each fact.

Discovery, the Authlib wiring, the services' validation, the console's forms, the CLI's choices
and the models' CHECK constraints all read these names; a capability is added here or nowhere.
This module imports nothing of the app, so every layer may import it.
"""

# Token endpoint client authentication (RFC 6749 2.3, OIDC Core 9). `none` is a public client.
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SECRET_AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
# Methods that prove who the client is: introspection and client_credentials accept only these.
CONFIDENTIAL_AUTH_METHODS = tuple(m for m in AUTH_METHODS if m != "none")

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
RESPONSE_TYPES = ("code",)
RESPONSE_MODES = ("query",)
CODE_CHALLENGE_METHODS = ("S256",)
PROMPT_VALUES = ("none", "login", "consent")
# What introspection and revocation accept as token_type_hint (RFC 7009 2.1, RFC 7662 2.1).
TOKEN_TYPE_HINTS = ("access_token", "refresh_token")
SUBJECT_TYPES = ("public",)

TOKEN_FORMATS = ("jwt", "opaque")
# What AuthGate signs ID tokens and JWT access tokens with; one key ring per algorithm.
# RFC 9864 names the Ed25519 algorithm `Ed25519`; `EdDSA` is published until relying parties catch up.
SIGNING_ALGS = ("RS256", "ES256", "EdDSA")
# What a client may sign a private_key_jwt assertion with (RFC 7523).
ASSERTION_ALGS = ("RS256", "PS256", "ES256", "EdDSA")
# What an upstream identity provider may sign its ID tokens with: asymmetric algorithms only, since
# an HMAC-signed ID token would be keyed with our client secret.
UPSTREAM_ID_TOKEN_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")

STANDARD_SCOPES = ("openid", "profile", "email", "roles", "offline_access")
CLAIMS = (
    "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "idp",
    "name", "given_name", "family_name", "preferred_username", "updated_at",
    "email", "email_verified", "roles", "acr",
)  # fmt: skip

# Second factors per client: `off` never asks for one, `optional` asks users who enrolled one (and
# any sign-in whose application asks for MFA), `required` makes every user enrol one.
MFA_POLICIES = ("off", "optional", "required")
# Authentication context classes (the ID token's `acr`, asked for with `acr_values`): a sign-in with
# one factor, and one with two (password and a code or a passkey, or a passkey with user verification).
ACR_1FA = "urn:authgate:acr:1fa"
ACR_MFA = "urn:authgate:acr:mfa"
ACR_VALUES = (ACR_1FA, ACR_MFA)

# Upstream identity provider kinds (social login).
IDP_KINDS = ("google", "github", "oidc")


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint's text: `column` holds one of `values`."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"
