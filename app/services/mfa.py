"""Second factors: each client's MFA policy, authenticator apps (TOTP), recovery codes, and what a sign-in needs.

TOTP is RFC 6238 with the parameters every authenticator app understands (6 digits, 30 seconds,
SHA-1). A code is accepted for the current time step and one step either side (clock drift), and
only for a step later than the last one accepted, so a code seen over someone's shoulder cannot be
used again. Ten recovery codes, stored as SHA-256, each work once. Wrong codes count against the
user's second step with the brute-force guard's lock machinery (the AUTHGATE_LOCKOUT_* settings),
under a name no password form can type (it holds a NUL).

The authentication context of a sign-in follows from its methods (amr, RFC 8176): two factors
(`mfa`) give `urn:authgate:acr:mfa`, anything else `urn:authgate:acr:1fa`.
"""

from __future__ import annotations

import hmac
import io
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyotp
import segno
import sqlalchemy as sa
from flask import current_app
from markupsafe import Markup

from app.capabilities import ACR_1FA, ACR_MFA, MFA_POLICIES
from app.extensions import db
from app.models import BrowserSession, Client, PasskeyCredential, RecoveryCode, TotpCredential, User
from app.services import ServiceError, ValidationError, affected, audit, guard, transaction
from app.services.crypto import decrypt, encrypt, keyed_hash
from app.services.validation import fail

SECRET_PURPOSE = b"totp-secret"
STEP_SECONDS = 30
DIGITS = 6
# Steps either side of now whose code is accepted: a phone's clock a little off still works.
DRIFT_STEPS = 1
RECOVERY_CODES = 10
# Recovery codes: 2 groups of 5 characters of an alphabet without look-alikes (about 50 bits).
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CHARS = 10

MFA_ENROLLED = "mfa_enrolled"
MFA_REMOVED = "mfa_removed"
MFA_RESET = "mfa_reset"
MFA_FAILED = "mfa_failed"
MFA_LOCKED = "mfa_locked"
MFA_STEP_UP = "mfa_step_up"
RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated"
RECOVERY_CODE_USED = "recovery_code_used"

# What a sign-in still needs before the application gets a code.
VERIFY = "verify"
ENROL = "enrol"

# How the console and the CLI describe each policy.
POLICY_TEXT = {
    "off": "Off: only a password (or social login)",
    "optional": "Optional: users may add an authenticator app or passkey, and are then asked for it",
    "required": "Required: every user sets up a second factor at their next sign-in",
}

WRONG_CODE = "That code is not right. Enter the current code from your app, or a recovery code."


class CodeRefused(ServiceError):
    """The code is wrong, already used, or the user has no authenticator app."""

    def __init__(self, reason: str = WRONG_CODE):
        super().__init__(reason)


# --- policy ------------------------------------------------------------------------------------


def check_policy(value) -> str:
    """Validate an MFA policy given by a form or the CLI (`off`, `optional` or `required`; blank is `off`)."""
    value = (value or "off").strip().lower() if isinstance(value, str) else (value or "off")
    if value not in MFA_POLICIES:
        fail(f"must be one of {', '.join(MFA_POLICIES)}")
    return value


def acr_of(amr: list[str] | None) -> str:
    """The authentication context class of a sign-in with these methods."""
    return ACR_MFA if amr and "mfa" in amr else ACR_1FA


def asks_for_mfa(acr_values: str | None) -> bool:
    """Whether an authorization request's acr_values asks for two factors."""
    return ACR_MFA in (acr_values or "").split()


def offered(client: Client) -> bool:
    """Whether the client's users may have second factors at all."""
    return client.mfa_policy != "off"


def requirement(client: Client, user: User, amr: list[str], acr_values: str | None, signing_in: bool) -> str | None:
    """What a sign-in with methods `amr` still needs: VERIFY a second factor, ENROL one, or nothing.

    Under `off` nothing is ever asked. A user with a factor is asked for it at every sign-in
    (`signing_in`); a live session is asked again only when the application wants MFA (policy
    `required`, or acr_values naming urn:authgate:acr:mfa) and the session has one factor. A user
    without a factor enrols when the application wants MFA.
    """
    if not offered(client) or "mfa" in amr:
        return None
    wanted = client.mfa_policy == "required" or asks_for_mfa(acr_values)
    if not (wanted or signing_in):
        return None
    if has_factor(user):
        return VERIFY
    return ENROL if wanted else None


def should_nudge(client: Client, user: User) -> bool:
    """Whether to remind the user (a console admin, on the dashboard) to add a second factor."""
    return offered(client) and not has_factor(user)


# --- what a user has ---------------------------------------------------------------------------


@dataclass
class Factors:
    """A user's second factors, for the sign-in step and the account page."""

    totp: TotpCredential | None
    passkeys: list[PasskeyCredential] = field(default_factory=list)
    recovery_left: int = 0

    @property
    def any(self) -> bool:
        return self.totp is not None or bool(self.passkeys)


def _totp_of(user: User) -> TotpCredential | None:
    return db.session.scalar(sa.select(TotpCredential).where(TotpCredential.user_id == user.id))


def factors_of(user: User) -> Factors:
    totp = _totp_of(user)
    passkeys = list(
        db.session.scalars(
            sa.select(PasskeyCredential).where(PasskeyCredential.user_id == user.id).order_by(PasskeyCredential.id)
        )
    )
    left = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    return Factors(totp if totp and totp.confirmed else None, passkeys, left or 0)


def has_factor(user: User) -> bool:
    confirmed = sa.select(TotpCredential.id).where(TotpCredential.user_id == user.id, TotpCredential.confirmed)
    passkey = sa.select(PasskeyCredential.id).where(PasskeyCredential.user_id == user.id)
    return bool(db.session.scalar(sa.select(sa.or_(sa.exists(confirmed), sa.exists(passkey)))))


def account_context(client: Client, user: User) -> dict:
    """What the account page's "Second factors" section shows (its `factors` variable)."""
    factors = factors_of(user)
    return {
        "offered": offered(client),
        "required": client.mfa_policy == "required",
        "totp": factors.totp,
        "passkeys": factors.passkeys,
        "recovery_left": factors.recovery_left,
        "any": factors.any,
    }


# --- TOTP enrolment ----------------------------------------------------------------------------


def _secret_key() -> str:
    return current_app.config["SECRET_KEY"]


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def start_totp(client: Client, user: User) -> str:
    """Begin (or begin again) enrolling an authenticator app; return the new secret (base32).

    A confirmed app stays in use until the new one is confirmed; an unconfirmed one is replaced.
    """
    secret = pyotp.random_base32()
    with transaction():
        credential = _totp_of(user)
        if credential is None:
            credential = TotpCredential(client_pk=client.id, user_id=user.id, confirmed=False)
            db.session.add(credential)
        elif credential.confirmed:
            raise ValidationError("code", "An authenticator app is already set up; remove it first.")
        credential.secret_encrypted = encrypt(secret, _secret_key(), SECRET_PURPOSE)
        credential.created_at = datetime.now(UTC)
    return secret


def enrolling_secret(user: User) -> str | None:
    """The secret of the user's unconfirmed authenticator app, if an enrolment is under way."""
    credential = _totp_of(user)
    if credential is None or credential.confirmed:
        return None
    return decrypt(credential.secret_encrypted, _secret_key(), SECRET_PURPOSE)


def provisioning_uri(client: Client, user: User, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code (or that a person types in)."""
    name = user.email or user.username
    return _totp(secret).provisioning_uri(name=name, issuer_name=f"{client.name}")


def qr_svg(uri: str) -> Markup:
    """The URI as a QR code in inline SVG: no script, no style attribute, so any CSP allows it."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out, kind="svg", xmldecl=False, svgns=True, scale=5, border=4, omitsize=True, dark="#000", light="#fff",
        title="QR code of the authenticator app set-up", svgclass="qr-code", lineclass=None,
    )  # fmt: skip
    # segno's own markup: the URI is drawn as modules of a path, never written out as text.
    return Markup(out.getvalue().decode())  # noqa: S704


def _matching_step(secret: str, code: str, after: int | None, now: float | None = None) -> int | None:
    """The time step whose code this is (now, or one step either side), if it is later than `after`."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = _totp(secret)
    current = int((now if now is not None else time.time()) // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if (after is None or step > after) and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def confirm_totp(client: Client, user: User, code: str) -> list[str]:
    """Confirm the enrolling app with its first code; return ten new recovery codes, to show once."""
    with transaction():
        credential = _totp_of(user)
        if credential is None or credential.confirmed:
            raise ValidationError("code", "Start setting up the authenticator app again.")
        secret = decrypt(credential.secret_encrypted, _secret_key(), SECRET_PURPOSE)
        step = _matching_step(secret, code or "", None)
        if step is None:
            raise ValidationError("code", "That code is not right. Enter the 6 digits your app shows now.")
        now = datetime.now(UTC)
        credential.confirmed, credential.confirmed_at, credential.last_step = True, now, step
        codes = _replace_recovery_codes(client, user)
        audit.record(MFA_ENROLLED, client=client, user=user, factor="totp")
    return codes


def remove_totp(client: Client, user: User) -> bool:
    """Remove the user's authenticator app (and its recovery codes once no factor is left); whether there was one."""
    with transaction():
        removed = affected(sa.delete(TotpCredential).where(TotpCredential.user_id == user.id))
        if removed:
            if not has_factor(user):
                affected(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
            audit.record(MFA_REMOVED, client=client, user=user, factor="totp")
    return bool(removed)


def _recovery_hash(user: User, code: str) -> str:
    # About 50 bits: keyed with the server's secret, so a leaked table alone cannot be searched;
    # bound to the user, so equal codes of two users never share a hash.
    typed = "".join(code.lower().split()).replace("-", "")
    return keyed_hash(f"{user.sub}:{typed}", current_app.config["SECRET_KEY"], b"recovery-code")


def _replace_recovery_codes(client: Client, user: User) -> list[str]:
    """Ten new recovery codes in the caller's transaction; the old ones stop working."""
    affected(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CHARS))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(client_pk=client.id, user_id=user.id, code_hash=_recovery_hash(user, raw)))
    return codes


def new_recovery_codes(client: Client, user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones, to show once."""
    with transaction():
        if not has_factor(user):
            raise ValidationError("code", "Set up an authenticator app or a passkey first.")
        codes = _replace_recovery_codes(client, user)
        audit.record(RECOVERY_CODES_REGENERATED, client=client, user=user)
    return codes


def reset_factors(client: Client, user: User) -> bool:
    """Remove every second factor of the user (an admin's action, audited); whether there was any."""
    if user.client_pk != client.id:
        raise ValidationError("user", "belongs to another client")
    with transaction():
        removed = affected(sa.delete(TotpCredential).where(TotpCredential.user_id == user.id))
        removed += affected(sa.delete(PasskeyCredential).where(PasskeyCredential.user_id == user.id))
        affected(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        audit.record(MFA_RESET, client=client, user=user, had_factors=bool(removed))
    _guard_forget(client, user)
    return bool(removed)


# --- the second step of a sign-in --------------------------------------------------------------


def _lock_name(user: User) -> str:
    # A name no password form accepts (they refuse NUL), so password failures never count here.
    return f"\x00second-factor\x00{user.sub}"


def _guard():
    from app.runtime import runtime

    return runtime().guard


def _guard_forget(client: Client, user: User) -> None:
    _guard().account_forget(client.client_id, _lock_name(user))


def second_step_lock(client: Client, user: User) -> None:
    """Raise guard.Throttled while the user's second step is locked after too many wrong codes."""
    wait = _guard().account_lock(client.client_id, _lock_name(user))
    if wait is not None:
        raise guard.Throttled(wait)


def verify_code(client: Client, user: User, code: str, ip: str | None = None) -> list[str]:
    """Check a TOTP or recovery code at the second step; return the methods it adds to amr.

    Raises guard.Throttled while the second step is locked, CodeRefused for a wrong or reused code
    (counted, audited, and locking the step after AUTHGATE_LOCKOUT_FAILURES of them).
    """
    second_step_lock(client, user)
    code = (code or "").strip()
    with transaction():
        methods = _accept_code(client, user, code)
        if methods is None:
            audit.record(MFA_FAILED, client=client, user=user, ip=ip)
    if methods is not None:
        _guard_forget(client, user)
        return methods
    locked_for = _guard().account_failed(client.client_id, _lock_name(user))
    if locked_for is not None:
        with transaction():
            audit.record(MFA_LOCKED, client=client, user=user, ip=ip, seconds=locked_for)
    raise CodeRefused()


def _accept_code(client: Client, user: User, code: str) -> list[str] | None:
    """Use up a TOTP step or a recovery code in the caller's transaction; None when the code is no good."""
    now = datetime.now(UTC)
    credential = _totp_of(user)
    if credential is not None and credential.confirmed:
        secret = decrypt(credential.secret_encrypted, _secret_key(), SECRET_PURPOSE)
        step = _matching_step(secret, code, credential.last_step)
        # The database settles two uses of one code at once: only one moves last_step past it.
        if step is not None and affected(
            sa.update(TotpCredential)
            .where(
                TotpCredential.id == credential.id,
                sa.or_(TotpCredential.last_step.is_(None), TotpCredential.last_step < step),
            )
            .values(last_step=step, last_used_at=now)
            .execution_options(synchronize_session=False)
        ):
            return ["otp"]
    if 8 <= len(code) <= 20 and affected(
        sa.update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_hash(user, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ):
        audit.record(RECOVERY_CODE_USED, client=client, user=user)
        # RFC 8176 has no value for a recovery code; it is a one-time password the user was given.
        return ["otp"]
    return None


def step_up_session(client: Client, user: User, browser_session: BrowserSession, amr: list[str]) -> None:
    """Record a second factor proved in a live session: its methods, and now as its time of authentication."""
    now = int(time.time())
    with transaction():
        affected(
            sa.update(BrowserSession)
            .where(BrowserSession.id == browser_session.id)
            .values(amr=amr, auth_time=now)
            .execution_options(synchronize_session=False)
        )
        audit.record(MFA_STEP_UP, client=client, user=user, amr=amr)
    browser_session.amr, browser_session.auth_time = amr, now


def with_second_factor(amr: list[str], methods: list[str]) -> list[str]:
    """The methods of a sign-in completed by a second factor: both, then `mfa`."""
    combined = [m for m in amr if m != "mfa"] + [m for m in methods if m not in amr and m != "mfa"]
    return [*combined, "mfa"]
