"""The 4-step client wizard, for a new client and for editing one.

The draft travels in the form itself: each step shows its own fields and carries the others
as hidden inputs, so going back and forth keeps what was typed, works without JavaScript,
and nothing is written before the last step. Each step is checked with the service's field
validators (`validate_fields`) and the rules that tie fields together (`validate_client`),
keeping only the errors of that step's fields; the review step creates or updates the client.
"""

import json

from flask import abort, flash, request, url_for

from app.admin import bp
from app.admin.forms import (
    AUTH_METHOD_TEXT,
    FLAG_FIELDS,
    GRANT_TEXT,
    LABELS,
    LIST_FIELDS,
    MFA_POLICY_TEXT,
    PRESETS,
    REVIEW,
    SCOPE_TEXT,
    SIGNING_ALG_TEXT,
    STEPS,
    TOKEN_FORMAT_TEXT,
    not_applicable,
    sentence,
)
from app.admin.ui import INVALID, hand_over_secret, page, see_other
from app.capabilities import STANDARD_SCOPES
from app.services import Errors, ValidationError, mail
from app.services import clients as client_service

TEMPLATE = "admin/client_wizard.html"
FRAGMENTS = ("wizard", "client_id_check")
# Inputs beside a list where a new entry is typed before it is added.
ADDABLE = ("redirect_uris", "post_logout_redirect_uris", "scopes")


# --- the draft: every field as the form holds it (strings and lists of strings) ---------


# The draft holds the client's fields and its default roles (names, as typed: space or comma separated).
DRAFT_FIELDS = (*client_service.FIELDS, "default_roles")


def _form_value(name: str, value):
    if name == "default_roles":
        return " ".join(value or [])
    if name in LIST_FIELDS:
        return [str(v) for v in value or []]
    if name in FLAG_FIELDS:
        return "1" if value else "0"
    if name == "jwks":
        return json.dumps(value, indent=2) if value else ""
    return "" if value is None else str(value)


def blank_draft() -> dict:
    values = {"client_id": "", "name": "", **client_service.DEFAULTS, "default_roles": []}
    return {name: _form_value(name, values[name]) for name in DRAFT_FIELDS}


def draft_of(client) -> dict:
    values = {name: getattr(client, name) for name in client_service.FIELDS}
    values["default_roles"] = client_service.default_roles(client)
    return {name: _form_value(name, values[name]) for name in DRAFT_FIELDS}


def read_draft(form) -> dict:
    draft = {}
    for name in DRAFT_FIELDS:
        if name in LIST_FIELDS:
            draft[name] = [v.strip() for v in form.getlist(name) if v.strip()]
        elif name in FLAG_FIELDS:
            # A checkbox follows a hidden "0", so the last value is the one that counts.
            draft[name] = (form.getlist(name) or ["0"])[-1]
        else:
            draft[name] = form.get(name, "")
    return draft


def service_fields(draft: dict, editing: bool) -> dict:
    fields = dict(draft)
    if editing:
        fields.pop("client_id")
    return fields


# --- checks, all by the service --------------------------------------------------------


def step_of(field: str) -> int:
    for step in STEPS:
        if field in step.fields:
            return step.number
    return 1


def shown(errors: dict[str, str]) -> dict[str, str]:
    return {name: sentence(LABELS.get(name, name), reason) for name, reason in errors.items()}


def check_step(number: int, draft: dict, editing: bool) -> dict[str, str]:
    """The errors of one step's fields: each field alone, then the rules that tie fields together."""
    fields = [name for name in STEPS[number - 1].fields if not (editing and name == "client_id")]
    errors = Errors()
    clean = client_service.validate_fields({name: draft[name] for name in fields}, errors)
    if "client_id" in clean:
        errors.check("client_id", client_service.check_available, clean["client_id"])
    if editing and "default_roles" in clean:
        errors.check(
            "default_roles", client_service.check_default_roles_exist, draft["client_id"], clean["default_roles"]
        )
    try:
        client_service.validate_client(draft)
    except ValidationError as exc:
        for name, reason in exc.errors.items():
            if name in fields:
                errors.add(name, reason)
    return errors.errors


def one_entry(name: str, typed: str) -> str:
    """What was typed into an "add" input, checked by the service as one entry: never split into several."""
    if name == "scopes" and any(c.isspace() for c in typed):
        # A space separates scopes in a request: "bad scope" would be two scopes, which the admin did not add.
        raise ValidationError(name, f"{typed!r} holds a space, which separates scopes: add one scope at a time")
    return client_service.validate_fields({name: [typed]})[name][0]


def add_entries(draft: dict, form, names) -> tuple[dict[str, str], dict[str, str]]:
    """Move what was typed into the "add" inputs onto their lists.

    Return the errors by input and what to show in the inputs again: text that could not be
    added stays to be corrected; a repeat is already on its list, so only the message says so.
    """
    errors, kept = {}, {}
    for name in names:
        key = f"new_{name}"
        typed = form.get(key, "").strip()
        if not typed:
            continue
        try:
            entry = one_entry(name, typed)
        except ValidationError as exc:
            errors[key] = sentence(LABELS[name], exc.reason)
            kept[key] = typed
            continue
        if entry in draft[name]:
            errors[key] = sentence(LABELS[name], f"{entry!r} is already in the list")
        else:
            draft[name].append(entry)
    return errors, kept


def typed_entries(form) -> list[str]:
    return [name for name in ADDABLE if form.get(f"new_{name}", "").strip()]


def apply_preset(draft: dict, preset) -> None:
    """Take the preset's capabilities; keep the user scopes only for clients that people sign in to."""
    draft.update({name: list(v) if isinstance(v, list) else v for name, v in preset.fields.items()})
    standard = STANDARD_SCOPES
    custom = [scope for scope in draft["scopes"] if scope not in standard]
    if not preset.user_scopes:
        draft["scopes"] = custom
    elif len(custom) == len(draft["scopes"]):
        draft["scopes"] = [*client_service.DEFAULTS["scopes"], *custom]


def active_preset(draft: dict) -> str | None:
    """The preset whose authentication methods and grant types the draft has, if any."""
    for preset in PRESETS:
        fields = preset.fields
        if draft["token_endpoint_auth_methods"] == fields["token_endpoint_auth_methods"] and sorted(
            draft["grant_types"]
        ) == sorted(fields["grant_types"]):
            return preset.key
    return None


# --- the view --------------------------------------------------------------------------


def render(draft: dict, step: int, reached: int, errors: dict, client=None, status: int = 200, typed=None):
    editing = client is not None
    action_url = url_for("admin.client_edit", client_id=client.client_id) if editing else url_for("admin.client_new")
    custom_scopes = [s for s in draft["scopes"] if s not in STANDARD_SCOPES]
    return page(
        TEMPLATE,
        FRAGMENTS,
        status=status,
        draft=draft,
        step=step,
        reached=max(reached, step),
        steps=STEPS,
        review=REVIEW,
        errors=errors,
        typed=typed or {},
        client=client,
        editing=editing,
        console=editing and client.client_id == client_service.CONSOLE_CLIENT_ID,
        action_url=action_url,
        presets=PRESETS,
        preset=active_preset(draft),
        auth_methods=AUTH_METHOD_TEXT,
        grants=GRANT_TEXT,
        scope_text=SCOPE_TEXT,
        standard_scopes=STANDARD_SCOPES,
        custom_scopes=custom_scopes,
        token_formats=TOKEN_FORMAT_TEXT,
        signing_algs=SIGNING_ALG_TEXT,
        mfa_policies=MFA_POLICY_TEXT,
        labels=LABELS,
        left_out=not_applicable(draft["grant_types"], errors),
        mail_off=mail.unavailable_reason(),
    )


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def run_wizard(client=None):
    """Handle one step of the wizard (GET shows the first step)."""
    editing = client is not None
    if request.method == "GET":
        draft = draft_of(client) if editing else blank_draft()
        return render(draft, 1, REVIEW if editing else 1, {}, client)

    form = request.form
    draft = read_draft(form)
    if editing:
        draft["client_id"] = client.client_id
    step = min(max(_int(form.get("step"), 1), 1), REVIEW)
    reached = REVIEW if editing else min(max(_int(form.get("reached"), step), step), REVIEW)
    action = form.get("action", "next")
    typed = {f"new_{name}": form.get(f"new_{name}", "") for name in ADDABLE}

    if action == "check":
        # Live check of the client ID while it is typed; only its own error matters here.
        errors = {k: v for k, v in shown(check_step(1, draft, editing)).items() if k == "client_id"}
        return render(draft, 1, reached, errors, client)
    if action == "enter":
        # Enter in an "add" input adds the entry; anywhere else it means Next (or Create).
        action = "add" if typed_entries(form) else ("save" if step == REVIEW else "next")
    if action.startswith("preset:"):
        preset = next((p for p in PRESETS if p.key == action.removeprefix("preset:")), None)
        if preset is None:
            abort(400)
        apply_preset(draft, preset)
        return render(draft, 2, reached, {}, client, typed=typed)
    if action == "add" or action.startswith("add:"):
        names = ADDABLE if action == "add" else [action.removeprefix("add:")]
        errors, kept = add_entries(draft, form, [n for n in names if n in ADDABLE])
        return render(draft, step, reached, errors, client, INVALID if errors else 200, kept)
    if action.startswith("remove:"):
        name, _, index = action.removeprefix("remove:").rpartition(":")
        if name in LIST_FIELDS and 0 <= _int(index, -1) < len(draft[name]):
            del draft[name][_int(index, -1)]
        return render(draft, step, reached, {}, client, typed=typed)
    if action == "back":
        return render(draft, max(step - 1, 1), reached, {}, client, typed=typed)
    if action.startswith("goto:"):
        target = min(max(_int(action.removeprefix("goto:"), step), 1), reached)
        if target <= step:
            return render(draft, target, reached, {}, client, typed=typed)
    elif action not in ("next", "save"):
        abort(400)
    else:
        target = step + 1

    # Going forward: take in what was typed but not added, and check this step first.
    errors, kept = {}, {}
    if step < REVIEW:
        errors, kept = add_entries(draft, form, ADDABLE)
        errors.update(shown(check_step(step, draft, editing)))
    if errors:
        return render(draft, step, reached, errors, client, INVALID, kept)
    if action == "save" and step == REVIEW:
        return save(draft, client)
    return render(draft, min(target, REVIEW), reached, {}, client)


def save(draft: dict, client=None):
    """The review's button: create or update the client; a failed rule sends the admin to its step."""
    editing = client is not None
    try:
        if editing:
            saved, secret = client_service.update_client(client.client_id, **service_fields(draft, editing=True))
        else:
            saved, secret = client_service.create_client(**service_fields(draft, editing=False))
    except ValidationError as exc:
        first = min(step_of(name) for name in exc.errors)
        return render(draft, first, REVIEW, shown(exc.errors), client, INVALID)
    hand_over_secret(saved.client_id, secret)
    flash(f"Saved {saved.name}." if editing else f"Created {saved.name}.", "success")
    return see_other(url_for("admin.client_detail", client_id=saved.client_id))


@bp.route("/clients/new", methods=["GET", "POST"])
def client_new():
    return run_wizard()


@bp.route("/clients/<client_id>/edit", methods=["GET", "POST"])
def client_edit(client_id):
    client = client_service.find_client(client_id)
    if client is None:
        abort(404)
    return run_wizard(client)
