"""Console pages: the dashboard, clients (list, detail, secret, delete) and signing keys."""

from flask import abort, current_app, flash, request, url_for
from flask_login import current_user

from app.admin import bp
from app.admin.forms import (
    MFA_POLICY_TEXT,
    ConfirmForm,
    ConsoleForm,
    MfaPolicyForm,
    RevokeKeyForm,
    RotateKeysForm,
    SelfServiceForm,
    show_errors,
)
from app.admin.ui import INVALID, duration, hand_over_secret, is_htmx, page, see_other, take_secret, utc
from app.services import NotFound, ValidationError, audit, mail, mfa
from app.services import clients as client_service
from app.services import idps as idp_service
from app.services import keys as key_service
from app.services import roles as role_service

PER_PAGE = 25

bp.add_app_template_filter(duration, "duration")
bp.add_app_template_filter(utc, "utc")


@bp.errorhandler(404)
def not_found(error):
    return page("admin/not_found.html", status=404)


# Beyond any list's last page; a larger number would overflow the database's OFFSET.
MAX_PAGE = 1_000_000


def page_number() -> int:
    try:
        return min(max(1, int(request.args.get("page", 1))), MAX_PAGE)
    except ValueError:
        return 1


def client_or_404(client_id: str):
    client = client_service.find_client(client_id)
    if client is None:
        abort(404)
    return client


@bp.get("/")
def dashboard():
    return page(
        "admin/dashboard.html",
        totals=client_service.totals(),
        sign_ins=audit.recent_with_clients((audit.LOGIN_SUCCEEDED,), limit=8),
        failures=audit.recent_with_clients((audit.LOGIN_FAILED,), limit=8),
        issuer=current_app.config["AUTHGATE_ISSUER"],
        mail_off=mail.unavailable_reason(),
        add_factor=mfa.should_nudge(client_service.get_client(client_service.CONSOLE_CLIENT_ID), current_user.user),
        account_url=url_for("auth.account", client_id=client_service.CONSOLE_CLIENT_ID),
    )


# --- clients ---------------------------------------------------------------------------


@bp.get("/clients")
def clients():
    search = request.args.get("q", "").strip()
    found = client_service.list_clients(search or None, page=page_number(), per_page=PER_PAGE)
    return page(
        "admin/clients.html",
        ("results",),
        found=found,
        search=search,
        usage=client_service.usage_of(found.items),
    )


def self_service_form(client) -> SelfServiceForm:
    """The client's self-service settings as they are now."""
    form = SelfServiceForm(
        formdata=None,
        allow_registration=client.allow_registration,
        require_verified_email=client.require_verified_email,
        default_roles=client_service.default_roles(client),
    )
    form.default_roles.choices = [role.name for role in role_service.list_roles(client)]
    return form


def client_page(client, form=None, notice=None, status=200, mfa_form=None):
    """The client's page; `form` (self-service) or `mfa_form` is the panel just posted (with its errors).

    `notice` is a note for HTMX's panel, by the panel's block name.
    """
    return page(
        "admin/client_detail.html",
        ("self_service", "mfa_panel"),
        status=status,
        client=client,
        secret=take_secret(client.client_id),
        self_service=form or self_service_form(client),
        mfa_form=mfa_form or MfaPolicyForm(formdata=None, mfa_policy=client.mfa_policy),
        mfa_policies=MFA_POLICY_TEXT,
        notice=notice or {},
        descriptions={role.name: role.description for role in role_service.list_roles(client)},
        mail_off=mail.unavailable_reason(),
        usage=client_service.usage(client),
        providers=idp_service.list_providers(client),
        needs_secret=client_service.needs_secret(client.token_endpoint_auth_methods),
        issuer=current_app.config["AUTHGATE_ISSUER"],
        console=client.client_id == client_service.CONSOLE_CLIENT_ID,
    )


@bp.get("/clients/<client_id>")
def client_detail(client_id):
    return client_page(client_or_404(client_id))


@bp.post("/clients/<client_id>/self-service")
def client_self_service(client_id):
    client = client_or_404(client_id)
    form = SelfServiceForm()
    form.default_roles.choices = [role.name for role in role_service.list_roles(client)]
    if form.validate_on_submit():
        try:
            client, _ = client_service.update_client(
                client.client_id,
                allow_registration=form.allow_registration.data,
                require_verified_email=form.require_verified_email.data,
                default_roles=form.default_roles.data or [],
            )
        except ValidationError as exc:
            show_errors(form, exc, fallback="default_roles")
        else:
            message = "Self-service settings saved."
            if not is_htmx():
                flash(message, "success")
                return see_other(url_for("admin.client_detail", client_id=client.client_id))
            return client_page(client, notice={"self_service": message})
    return client_page(client, form, status=INVALID)


@bp.post("/clients/<client_id>/mfa")
def client_mfa(client_id):
    client = client_or_404(client_id)
    form = MfaPolicyForm()
    if form.validate_on_submit():
        try:
            client, _ = client_service.update_client(client.client_id, mfa_policy=form.mfa_policy.data)
        except ValidationError as exc:
            show_errors(form, exc)
        else:
            message = f"Second factors are {MFA_POLICY_TEXT[client.mfa_policy][0].lower()} now."
            if not is_htmx():
                flash(message, "success")
                return see_other(url_for("admin.client_detail", client_id=client.client_id))
            return client_page(client, notice={"mfa_panel": message})
    return client_page(client, mfa_form=form, status=INVALID)


@bp.route("/clients/<client_id>/rotate-secret", methods=["GET", "POST"])
def client_rotate_secret(client_id):
    client = client_or_404(client_id)
    form = ConsoleForm()
    if form.validate_on_submit():
        try:
            secret = client_service.rotate_secret(client.client_id)
        except ValidationError as exc:
            form.form_errors.append(exc.reason)
        else:
            hand_over_secret(client.client_id, secret)
            flash("The secret was replaced; the old one no longer works.", "success")
            return see_other(url_for("admin.client_detail", client_id=client.client_id))
    status = INVALID if form.form_errors else 200
    return page("admin/client_rotate.html", status=status, client=client, form=form)


@bp.route("/clients/<client_id>/delete", methods=["GET", "POST"])
def client_delete(client_id):
    client = client_or_404(client_id)
    form = ConfirmForm()
    usage = client_service.usage(client)
    try:
        client_service.check_deletable(client.client_id)
        refused = None
    except ValidationError as exc:
        refused = exc.reason
    if form.validate_on_submit() and refused is None:
        if form.confirm.data.strip() != client.client_id:
            form.confirm.errors = [f"Type {client.client_id} to confirm."]
        else:
            gone = client_service.delete_client(client.client_id)
            flash(
                f"Deleted {client.name} ({client.client_id}) with its {gone['users']} users and {gone['roles']} roles.",
                "success",
            )
            return see_other(url_for("admin.clients"))
    status = INVALID if form.confirm.errors else (409 if refused and request.method == "POST" else 200)
    return page("admin/client_delete.html", status=status, client=client, form=form, usage=usage, refused=refused)


# --- signing keys ----------------------------------------------------------------------


@bp.route("/keys", methods=["GET", "POST"])
def keys():
    form = RotateKeysForm()
    if form.validate_on_submit() and form.switch_confirmed():
        try:
            made = key_service.rotate(form.alg.data or None, immediately=form.now.data)
        except ValidationError as exc:
            show_errors(form, exc)
        else:
            names = ", ".join(f"{key.alg} {key.kid}" for key in made)
            when = "signs from now on" if form.now.data else "is published now and starts signing once caches have it"
            flash(f"New key {names} {when}.", "success")
            return see_other(url_for("admin.keys"))
    rows = [(key, key_service.state_of(key)) for key in key_service.list_keys()]
    return page(
        "admin/keys.html",
        status=INVALID if form.errors else 200,
        form=form,
        rows=rows,
        delay=int(key_service.rotation_delay().total_seconds()),
        rotation_days=current_app.config["AUTHGATE_KEY_ROTATION_DAYS"],
        issuer=current_app.config["AUTHGATE_ISSUER"],
    )


@bp.route("/keys/<kid>/revoke", methods=["GET", "POST"])
def key_revoke(kid):
    key = next((k for k in key_service.list_keys() if k.kid == kid), None)
    if key is None:
        abort(404)
    form = RevokeKeyForm()
    current = key_service.state_of(key)
    if form.validate_on_submit() and current != "revoked":
        if form.confirm.data.strip() != key.kid:
            form.confirm.errors = [f"Type {key.kid} to confirm."]
        else:
            try:
                _, replacement = key_service.revoke(key.kid, replace=form.replace.data)
            except (NotFound, ValidationError) as exc:
                form.form_errors.append(exc.reason if isinstance(exc, ValidationError) else str(exc))
            else:
                message = f"Key {key.kid} is revoked: it is no longer published and no token it signed is accepted."
                if replacement is not None:
                    message += f" The new {replacement.alg} key {replacement.kid} signs from now on."
                flash(message, "success")
                return see_other(url_for("admin.keys"))
    status = INVALID if form.confirm.errors or form.form_errors else 200
    return page("admin/key_revoke.html", status=status, key=key, state=current, form=form)
