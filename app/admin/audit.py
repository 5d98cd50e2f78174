"""Console: the audit log, filterable by client, user, kind, actor and time (UTC), newest first."""

import json

from flask import request

from app.admin import bp
from app.admin.forms import sentence
from app.admin.ui import INVALID, page
from app.admin.views import page_number
from app.models import AuditEvent
from app.services import audit
from app.services import clients as client_service

PER_PAGE = 50
LABELS = {"client": "Client", "user": "User", "kind": "Kind", "actor": "Actor", "from": "From", "to": "To"}

bp.add_app_template_global(audit.shown_username, "shown_username")


def shown(value) -> str:
    """A recorded value as a person reads it: lists joined, yes/no, "—" for nothing."""
    if value is None or value in ("", [], {}):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(shown(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


@bp.app_template_filter("audit_details")
def details(event: AuditEvent) -> list[tuple[str, str]]:
    """The event's details as (name, text) lines.

    A change reads "old → new" (only the value, for something just created); a secret, what became of it.
    """
    created = event.kind.endswith("_created")
    lines = []
    for name, value in (event.detail or {}).items():
        if name != "changes":
            lines.append((name, shown(value)))
            continue
        for field, change in value.items():
            if not isinstance(change, list):
                lines.append((field, shown(change)))
            elif created:
                lines.append((field, shown(change[1])))
            else:
                lines.append((field, f"{shown(change[0])} → {shown(change[1])}"))
    return lines


@bp.get("/audit")
def audit_log():
    kinds = audit.kinds()
    filters, errors = audit.parse_filters(request.args, kinds)
    found = audit.search(filters, page=page_number(), per_page=PER_PAGE)
    return page(
        "admin/audit.html",
        ("results",),
        status=INVALID if errors else 200,
        found=found,
        errors={field: sentence(LABELS[field], reason) for field, reason in errors.items()},
        given=request.args,
        labels=LABELS,
        kinds=kinds,
        client_ids=[client_id for client_id, _ in client_service.choices()],
    )
