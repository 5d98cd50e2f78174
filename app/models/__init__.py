"""SQLAlchemy models, one module per aggregate."""

from app.models.audit import AuditEvent
from app.models.client import Client
from app.models.grant import (
    AccessToken,
    AuthorizationCode,
    BrowserSession,
    Consent,
    RefreshToken,
    RevokedJti,
)
from app.models.idp import IdentityProvider, IdentityProviderRole, LinkedIdentity
from app.models.key import ServerState, SigningKey
from app.models.link import LinkToken
from app.models.mfa import PasskeyCredential, RecoveryCode, TotpCredential
from app.models.role import Role
from app.models.user import User, UserRole

__all__ = [
    "AccessToken",
    "AuditEvent",
    "AuthorizationCode",
    "BrowserSession",
    "Client",
    "Consent",
    "IdentityProvider",
    "IdentityProviderRole",
    "LinkToken",
    "LinkedIdentity",
    "PasskeyCredential",
    "RecoveryCode",
    "RefreshToken",
    "RevokedJti",
    "Role",
    "ServerState",
    "SigningKey",
    "TotpCredential",
    "User",
    "UserRole",
]
