"""Console pages for the roles and users of a client."""

from flask import abort, flash, redirect, request, session, url_for
from flask_login import current_user

from app.admin import bp
from app.admin.forms import (
    ConfirmForm,
    ConsoleForm,
    EnabledForm,
    MailForm,
    PasswordForm,
    ProfileForm,
    RoleForm,
    RolesForm,
    UserForm,
    show_errors,
)
from app.admin.ui import INVALID, is_htmx, page, see_other
from app.admin.views import PER_PAGE, client_or_404, page_number
from app.services import NotFound, ValidationError, committed, guard, mail, mfa, selfservice
from app.services import clients as client_service
from app.services import identities as identity_service
from app.services import idps as idp_service
from app.services import roles as role_service
from app.services import sessions as session_service
from app.services import users as user_service

# The client whose roles and users were looked at last, so the menu returns to it.
CHOSEN = "admin_client"


def choose(client) -> None:
    session[CHOSEN] = client.client_id


def _default_client_id() -> str | None:
    """The client picked last, else the first one that is not the console's own."""
    remembered = session.get(CHOSEN)
    if remembered and client_service.find_client(remembered) is not None:
        return remembered
    ids = [client_id for client_id, _ in client_service.choices()]
    others = [client_id for client_id in ids if client_id != client_service.CONSOLE_CLIENT_ID]
    candidates = others or ids
    return candidates[0] if candidates else None


def _go_to(endpoint: str):
    wanted = request.args.get("client")
    client_id = wanted if wanted and client_service.find_client(wanted) else _default_client_id()
    if client_id is None:
        return page("admin/no_clients.html", section=endpoint)
    return redirect(url_for(f"admin.{endpoint}", client_id=client_id))


@bp.get("/roles")
def roles_home():
    return _go_to("roles")


@bp.get("/users")
def users_home():
    return _go_to("users")


# --- roles -----------------------------------------------------------------------------


@bp.route("/clients/<client_id>/roles", methods=["GET", "POST"])
def roles(client_id):
    client = client_or_404(client_id)
    choose(client)
    form = RoleForm()
    notice = None
    if form.validate_on_submit():
        try:
            role = role_service.create_role(client.client_id, form.name.data, form.description.data)
        except ValidationError as exc:
            show_errors(form, exc)
        else:
            if not is_htmx():
                flash(f"Created role {role.name}.", "success")
                return see_other(url_for("admin.roles", client_id=client.client_id))
            notice = f"Created role {role.name}."
            form = RoleForm(formdata=None)
    listed = role_service.list_roles(client)
    return page(
        "admin/roles.html",
        ("roles_panel",),
        status=INVALID if form.errors else 200,
        client=client,
        choices=client_service.choices(),
        roles=listed,
        locked={role.name for role in listed if _undeletable(client, role.name)},
        counts=role_service.holder_counts(client),
        form=form,
        notice=notice,
    )


def _undeletable(client, name: str) -> str | None:
    """Why the service would refuse to delete the role, if it would."""
    try:
        role_service.check_role_deletable(client.client_id, name)
    except ValidationError as exc:
        return exc.reason
    return None


def role_or_404(client, name: str):
    role = role_service.find_role(client, name)
    if role is None:
        abort(404)
    return role


@bp.route("/clients/<client_id>/roles/<path:name>/delete", methods=["GET", "POST"])
def role_delete(client_id, name):
    client = client_or_404(client_id)
    role = role_or_404(client, name)
    holders, total = role_service.holders_preview(role)
    form = ConfirmForm()
    asked = False
    refused = None
    if form.validate_on_submit():
        if total and form.confirm.data != "yes":
            # Assigned since the list was shown: ask first, naming who holds it.
            asked = True
        else:
            try:
                had = role_service.delete_role(client.client_id, role.name)
            except ValidationError as exc:
                refused = exc.reason
            else:
                lost = f"; {len(had)} users no longer hold it." if had else "."
                flash(f"Deleted role {role.name}{lost}", "success")
                return see_other(url_for("admin.roles", client_id=client.client_id))
    return page(
        "admin/role_delete.html",
        status=409 if asked or refused else 200,
        client=client,
        role=role,
        holders=holders,
        total=total,
        form=form,
        refused=refused or _undeletable(client, role.name),
    )


# --- users -----------------------------------------------------------------------------


@bp.get("/clients/<client_id>/users")
def users(client_id):
    client = client_or_404(client_id)
    choose(client)
    search = request.args.get("q", "").strip()
    found = user_service.list_users(client, search or None, page=page_number(), per_page=PER_PAGE)
    return page(
        "admin/users.html",
        ("results",),
        client=client,
        choices=client_service.choices(),
        found=found,
        search=search,
        roles_of=user_service.role_names_of(found.items),
    )


def cannot_sign_in(client, user) -> str | None:
    """Why a user without a password has no way in: the client offers no identity provider to use instead."""
    if user.password_hash is not None or idp_service.enabled_providers(client):
        return None
    kind = "enabled identity provider" if idp_service.list_providers(client) else "identity provider"
    return (
        f"{user.username} has no password and {client.name} has no {kind}: they cannot sign in. "
        f"Set a password, or give {client.name} an {kind}."
    )


def _role_choices(client) -> list[str]:
    return [role.name for role in role_service.list_roles(client)]


@bp.route("/clients/<client_id>/users/new", methods=["GET", "POST"])
def user_new(client_id):
    client = client_or_404(client_id)
    form = UserForm()
    form.roles.choices = _role_choices(client)
    if form.validate_on_submit():
        try:
            user = user_service.create_user(
                client.client_id,
                form.username.data,
                email=form.email.data,
                first_name=form.first_name.data,
                last_name=form.last_name.data,
                password=None if form.no_password.data else (form.password.data or ""),
                roles=form.roles.data,
            )
        except ValidationError as exc:
            show_errors(form, exc)
        else:
            if cannot_sign_in(client, user):
                flash(f"Created user {user.username}, who cannot sign in yet (see Password).", "warning")
            else:
                flash(f"Created user {user.username}.", "success")
            return see_other(url_for("admin.user_detail", client_id=client.client_id, username=user.username))
    return page(
        "admin/user_new.html",
        status=INVALID if form.errors else 200,
        client=client,
        form=form,
        descriptions={role.name: role.description for role in role_service.list_roles(client)},
        has_providers=bool(idp_service.enabled_providers(client)),
    )


def user_or_404(client, username: str):
    user = user_service.find_user(client, username)
    if user is None:
        abort(404)
    return user


def locks_self_out(client, user, enabled: bool = True, roles: list[str] | None = None) -> str | None:
    """Why this change would shut the signed-in admin out of the console, if it would."""
    if user.id != current_user.user.id:
        return None
    if not enabled:
        return "You cannot disable yourself: you would be signed out with no way back. Another admin can."
    if (
        roles is not None
        and client.client_id == client_service.CONSOLE_CLIENT_ID
        and (client_service.CONSOLE_ADMIN_ROLE not in roles)
    ):
        return f"You cannot take {client_service.CONSOLE_ADMIN_ROLE} from yourself: you would lose the console."
    return None


def user_page(client, user, submitted=None, notice=None, status=200, problem=None):
    """The user's page; `submitted` is the form just posted (with its errors), the others start fresh.

    `problem` is why an emailed link could not be sent, shown in the Email panel.
    """
    forms = {
        "email_panel": MailForm(formdata=None),
        "profile": ProfileForm(formdata=None, obj=user),
        "password_panel": PasswordForm(formdata=None),
        "user_roles": RolesForm(formdata=None, roles=user_service.role_names(user)),
        "status": EnabledForm(formdata=None),
        "sessions": ConsoleForm(formdata=None),
        "factors": ConsoleForm(formdata=None),
    }
    forms["user_roles"].roles.choices = _role_choices(client)
    if submitted is not None:
        forms.update(submitted)
    return page(
        "admin/user_detail.html",
        ("profile", "password_panel", "user_roles", "status", "sessions", "factors"),
        status=status,
        client=client,
        user=user,
        forms=forms,
        notice=notice or {},
        descriptions={role.name: role.description for role in role_service.list_roles(client)},
        is_self=user.id == current_user.user.id,
        locked_for=guard.lock_state(client, user),
        identities=identity_service.list_identities(user),
        sign_in_methods=identity_service.sign_in_methods(user),
        signed_in=session_service.overview(client, user),
        stranded=cannot_sign_in(client, user),
        mail_off=mail.unavailable_reason(),
        pending_email=selfservice.pending_email(user),
        problem=problem,
        factors=mfa.factors_of(user),
    )


@bp.get("/clients/<client_id>/users/<username>")
def user_detail(client_id, username):
    client = client_or_404(client_id)
    return user_page(client, user_or_404(client, username))


def saved(client, user, block: str, message: str):
    """After a change on the user page: 303 to it, or for HTMX the changed block with a note."""
    if not is_htmx():
        flash(message, "success")
        return see_other(url_for("admin.user_detail", client_id=client.client_id, username=user.username))
    return user_page(client, user, notice={block: message})


@bp.post("/clients/<client_id>/users/<username>/profile")
def user_profile(client_id, username):
    client = client_or_404(client_id)
    user = user_or_404(client, username)
    form = ProfileForm()
    if form.validate_on_submit():
        try:
            user = user_service.update_user(
                client.client_id,
                user.username,
                email=form.email.data,
                first_name=form.first_name.data,
                last_name=form.last_name.data,
                email_verified=form.email_verified.data,
            )
        except ValidationError as exc:
            show_errors(form, exc)
        else:
            return saved(client, user, "profile", "Profile saved.")
    return user_page(client, user, {"profile": form}, status=INVALID)


@bp.post("/clients/<client_id>/users/<username>/enabled")
def user_enabled(client_id, username):
    client = client_or_404(client_id)
    user = user_or_404(client, username)
    form = EnabledForm()
    if not form.validate_on_submit() or form.enabled.data not in ("0", "1"):
        abort(400)
    refused = locks_self_out(client, user, enabled=form.enabled.data == "1")
    if refused:
        form.form_errors.append(refused)
        return user_page(client, user, {"status": form}, status=INVALID)
    user = user_service.set_enabled(client.client_id, user.username, form.enabled.data == "1")
    message = "Enabled: the user can sign in." if user.enabled else "Disabled: the user can no longer sign in."
    return saved(client, user, "status", message)


@bp.post("/clients/<client_id>/users/<username>/unlock")
@committed
def user_unlock(client_id, username):
    """End a sign-in lock before its time (guard records who did it, in this request's transaction)."""
    client = client_or_404(client_id)
    user = user_or_404(client, username)
    if not ConsoleForm().validate_on_submit():
        abort(400)
    if guard.unlock(client, user):
        message = f"Unlocked: {user.username} can sign in again."
    else:
        message = f"{user.username} was not locked (any lock had already ended)."
    return saved(client, user, "status", message)


@bp.post("/clients/<client_id>/users/<username>/reset-factors")
def user_reset_factors(client_id, username):
    """Remove the user's authenticator app, passkeys and recovery codes: for one who lost them."""
    client = client_or_404(client_id)
    user = user_or_404(client, username)
    if not ConsoleForm().validate_on_submit():
        abort(400)
    if mfa.reset_factors(client, user):
        then = "has them set up a new one" if client.mfa_policy == "required" else "asks for none"
        message = f"Removed every second factor of {user.username}; their next sign-in {then}."
    else:
        message = f"{user.username} had no second factor to remove."
    return saved(client, user, "factors", message)


@bp.post("/clients/<client_id>/users/<username>/roles")
def user_roles(client_id, username):
    client = client_or_404(client_id)
    user = user_or_404(client, username)
    form = RolesForm()
    form.roles.choices = _role_choices(client)
    refused = locks_self_out(client, user, roles=form.roles.data or [])
    if refused:
        form.roles.errors = [refused]
    elif form.validate_on_submit():
        try:
            user = user_service.set_roles(client.client_id, user.username, form.roles.data)
        except ValidationError as exc:
            show_errors(form, exc, fallback="roles")
        except NotFound as exc:
            form.roles.errors = [f"{exc}."]
        else:
            return saved(client, user, "user_roles", "Roles saved.")
    return user_page(client, user, {"user_roles": form}, status=INVALID)


@bp.post("/clients/<client_id>/users/<username>/password")
def user_password(client_id, username):
    client = client_or_404(client_id)
    user = user_or_404(client, username)
    form = PasswordForm()
    if form.validate_on_submit():
        password = None if form.no_password.data else (form.password.data or "")
        try:
            user = user_service.set_password(client.client_id, user.username, password)
        except ValidationError as exc:
            show_errors(form, exc)
        else:
            message = "Password removed: only social login remains." if password is None else "Password set."
            return saved(client, user, "password_panel", message)
    return user_page(client, user, {"password_panel": form}, status=INVALID)


def _send_link(client_id: str, username: str, send, sent: str):
    """Email the user a link with `send(client, user)`; on success say `sent`, else say why on the page."""
    client = client_or_404(client_id)
    user = user_or_404(client, username)
    if not MailForm().validate_on_submit():
        abort(400)
    headers = {}
    try:
        send(client, user)
    except guard.Throttled as exc:
        minutes = (exc.retry_after + 59) // 60
        problem = (
            f"Too many emails went to {user.username} in the last hour; "
            f"try again in about {minutes} minute{'s' if minutes != 1 else ''}."
        )
        status = 429
        headers["Retry-After"] = str(exc.retry_after)
    except mail.MailUnavailable as exc:
        problem, status = str(exc) or "This server sends no mail (AUTHGATE_SMTP_URL is not set).", 503
    except mail.MailFailed as exc:
        problem, status = str(exc), 502
    except ValidationError as exc:
        if exc.field == "email":
            problem = f"{user.username} has no email address to send a link to."
        else:
            problem = f"{exc.reason}."  # it starts with the username, which keeps its case
        status = INVALID
    else:
        flash(sent.format(email=user.email), "success")
        return see_other(url_for("admin.user_detail", client_id=client.client_id, username=user.username))
    response, _ = user_page(client, user, problem=problem)
    return response, status, headers


@bp.post("/clients/<client_id>/users/<username>/send-verification")
def user_send_verification(client_id, username):
    return _send_link(
        client_id,
        username,
        lambda client, user: selfservice.send_verification(client, user),
        "Sent a verification link to {email}.",
    )


@bp.post("/clients/<client_id>/users/<username>/send-reset")
def user_send_reset(client_id, username):
    return _send_link(client_id, username, selfservice.send_reset_link, "Sent a password reset link to {email}.")


@bp.route("/clients/<client_id>/users/<username>/delete", methods=["GET", "POST"])
def user_delete(client_id, username):
    client = client_or_404(client_id)
    user = user_or_404(client, username)
    form = ConfirmForm()
    refused = "You cannot delete yourself. Another admin can." if user.id == current_user.user.id else None
    if form.validate_on_submit() and not refused:
        user_service.delete_user(client.client_id, user.username)
        flash(f"Deleted user {user.username}.", "success")
        return see_other(url_for("admin.users", client_id=client.client_id))
    status = 409 if refused and request.method == "POST" else 200
    return page("admin/user_delete.html", status=status, client=client, user=user, form=form, refused=refused)
