"""Passkeys (WebAuthn): registration on the account page, and sign-in as a second factor or without a password.

The relying party is AuthGate itself: its id is the issuer's host name and the origin the issuer's.
Every ceremony asks for user verification (a PIN or biometric on the authenticator) and for a
discoverable credential, so one passkey serves both as a second factor and for passwordless
sign-in. The challenge is the caller's to keep (the view keeps it in the signed cookie) and to use
once. A passkey found by its credential id must belong to the client the sign-in is for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
import webauthn
from flask import current_app
from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidJSONStructure, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app.extensions import db
from app.models import Client, PasskeyCredential, User
from app.services import NotFound, ServiceError, ValidationError, affected, audit, transaction
from app.services.mfa import MFA_ENROLLED, MFA_REMOVED
from app.services.validation import check_text

NAME_CHARS = 64
# What the browser may send back: a credential JSON is a few kilobytes at most.
MAX_CREDENTIAL_CHARS = 16_000
PASSKEY_USED = "passkey_used"


class PasskeyRefused(ServiceError):
    """The authenticator's answer does not check out (wrong challenge, origin, signature, unknown key...)."""

    def __init__(self, reason: str = "That passkey could not be verified. Try again."):
        super().__init__(reason)


def rp_id() -> str:
    return urlsplit(current_app.config["AUTHGATE_ISSUER"]).hostname or "localhost"


def origin() -> str:
    parts = urlsplit(current_app.config["AUTHGATE_ISSUER"])
    return f"{parts.scheme}://{parts.netloc}"


def _descriptors(passkeys: list[PasskeyCredential]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=webauthn.base64url_to_bytes(p.credential_id),
            transports=[AuthenticatorTransport(t) for t in p.transports if t in known] or None,
        )
        for p in passkeys
    ]


def _passkeys_of(user: User) -> list[PasskeyCredential]:
    query = sa.select(PasskeyCredential).where(PasskeyCredential.user_id == user.id).order_by(PasskeyCredential.id)
    return list(db.session.scalars(query))


def registration_options(client: Client, user: User) -> tuple[str, bytes]:
    """Options for navigator.credentials.create (JSON), and the challenge to check the answer against."""
    options = webauthn.generate_registration_options(
        rp_id=rp_id(),
        rp_name=client.name,
        user_id=user.sub.encode(),
        user_name=user.email or user.username,
        user_display_name=user.full_name or user.username,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(_passkeys_of(user)),
    )
    return webauthn.options_to_json(options), options.challenge


def check_name(value) -> str:
    return check_text(value, NAME_CHARS, required="give the passkey a name, such as the device it is on")


def _credential_json(credential) -> str:
    text = credential if isinstance(credential, str) else json.dumps(credential)
    if len(text) > MAX_CREDENTIAL_CHARS:
        raise PasskeyRefused()
    return text


def register(client: Client, user: User, credential, challenge: bytes, name: str) -> PasskeyCredential:
    """Check the authenticator's answer to `registration_options` and keep the new passkey under `name`."""
    try:
        name = check_name(name)
    except ValidationError as error:
        raise ValidationError("name", error.reason) from None
    try:
        verified = webauthn.verify_registration_response(
            credential=_credential_json(credential),
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            require_user_verification=True,
        )
    except (InvalidRegistrationResponse, InvalidJSONStructure, ValueError, KeyError, TypeError) as error:
        raise PasskeyRefused(f"The passkey could not be registered: {error}") from None
    transports = []
    if isinstance(credential, dict):
        transports = [t for t in (credential.get("response") or {}).get("transports") or [] if isinstance(t, str)]
    credential_id = bytes_to_base64url(verified.credential_id)

    def taken():
        raise ValidationError("name", "This passkey is already registered.")

    with transaction(conflict=taken):
        passkey = PasskeyCredential(
            client_pk=client.id,
            user_id=user.id,
            credential_id=credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=transports[:8],
            multi_device=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            name=name,
        )
        db.session.add(passkey)
        db.session.flush()
        audit.record(MFA_ENROLLED, client=client, user=user, factor="passkey", name=name)
    return passkey


def remove(client: Client, user: User, passkey_id: int) -> str:
    """Remove one of the user's passkeys; return its name."""
    with transaction():
        passkey = db.session.scalar(
            sa.select(PasskeyCredential).where(PasskeyCredential.id == passkey_id, PasskeyCredential.user_id == user.id)
        )
        if passkey is None:
            raise NotFound("No such passkey.")
        name = passkey.name
        db.session.delete(passkey)
        audit.record(MFA_REMOVED, client=client, user=user, factor="passkey", name=name)
    return name


def authentication_options(user: User | None) -> tuple[str, bytes]:
    """Options for navigator.credentials.get: the user's passkeys, or any discoverable one when `user` is None."""
    options = webauthn.generate_authentication_options(
        rp_id=rp_id(),
        allow_credentials=_descriptors(_passkeys_of(user)) if user is not None else None,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return webauthn.options_to_json(options), options.challenge


def amr_of(passkey: PasskeyCredential) -> list[str]:
    """RFC 8176 methods of a passkey with user verification: a synced passkey is a software key."""
    return ["swk" if passkey.multi_device else "hwk", "user"]


def authenticate(client: Client, credential, challenge: bytes, user: User | None = None) -> tuple[User, list[str]]:
    """Check an assertion for `authentication_options`; return its user and the methods it proves.

    With `user` (the second step) the passkey must be theirs; without (passwordless) the passkey
    names the user, who must belong to `client` and be enabled.
    """
    text = _credential_json(credential)
    try:
        parsed = parse_authentication_credential_json(text)
    except (InvalidJSONStructure, InvalidAuthenticationResponse, ValueError, KeyError, TypeError):
        raise PasskeyRefused() from None
    row = db.session.execute(
        sa.select(PasskeyCredential, User)
        .join(User, User.id == PasskeyCredential.user_id)
        .where(PasskeyCredential.client_pk == client.id, PasskeyCredential.credential_id == parsed.id)
    ).first()
    if row is None:
        raise PasskeyRefused("This passkey is not registered for this application.")
    passkey, owner = row
    if (user is not None and owner.id != user.id) or not owner.enabled:
        raise PasskeyRefused("This passkey is not registered for this account.")
    handle = parsed.response.user_handle
    if handle is not None and handle != owner.sub.encode():
        raise PasskeyRefused()
    try:
        verified = webauthn.verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except (InvalidAuthenticationResponse, ValueError) as error:
        raise PasskeyRefused(f"That passkey could not be verified: {error}") from None
    with transaction():
        # A counter that went backwards means a cloned authenticator; the library refuses those.
        affected(
            sa.update(PasskeyCredential)
            .where(PasskeyCredential.id == passkey.id)
            .values(sign_count=verified.new_sign_count, last_used_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        audit.record(PASSKEY_USED, client=client, user=owner, name=passkey.name)
    return owner, amr_of(passkey)
