"""Console pages for a client's identity providers (Google, GitHub, OpenID Connect) and a user's linked accounts."""

from contextlib import suppress

from flask import abort, flash, request, url_for

from app.admin import bp
from app.admin.forms import PROVIDER_KINDS, ConfirmForm, EnabledForm, ProviderForm, sentence, show_errors
from app.admin.people import choose, user_or_404
from app.admin.ui import INVALID, is_htmx, page, see_other
from app.admin.views import client_or_404
from app.services import NotFound, ValidationError
from app.services import identities as identity_service
from app.services import idps as idp_service
from app.services import roles as role_service

LIST = "admin/idps.html"
NEW = "admin/idp_new.html"
DETAIL = "admin/idp_detail.html"


def provider_or_404(client, slug: str):
    provider = idp_service.find_provider(client, slug)
    if provider is None:
        abort(404)
    return provider


def _with_roles(form: ProviderForm, client) -> dict[str, str]:
    """Offer the client's own roles as default roles; return their descriptions."""
    roles = role_service.list_roles(client)
    form.default_roles.choices = [role.name for role in roles]
    return {role.name: role.description for role in roles}


def _form_data(values: dict) -> dict:
    return {**values, "scopes": " ".join(values.get("scopes") or [])}


def _settings(form: ProviderForm, kind: str) -> dict:
    """The form as the service takes it: only the endpoints of this kind; an empty secret keeps the stored one."""
    return {
        "name": form.name.data,
        "upstream_client_id": form.upstream_client_id.data,
        "client_secret": form.client_secret.data or None,
        "scopes": form.scopes.data,
        **{name: form[name].data for name in idp_service.ENDPOINT_FIELDS[kind]},
        "auto_create": form.auto_create.data,
        "default_roles": form.default_roles.data or [],
        "link_verified_email": form.link_verified_email.data,
    }


# --- the list --------------------------------------------------------------------------


def providers_page(client, notice: str | None = None):
    return page(
        LIST,
        ("providers",),
        client=client,
        providers=idp_service.list_providers(client),
        linked=idp_service.identity_counts(client),
        kinds=PROVIDER_KINDS,
        notice=notice,
    )


@bp.get("/clients/<client_id>/identity-providers")
def idp_list(client_id):
    client = client_or_404(client_id)
    choose(client)
    return providers_page(client)


# --- a new provider: choose the type, then fill in its settings --------------------------


def new_page(client, form: ProviderForm | None, kind: str | None, descriptions=None, type_error=None, status=200):
    # The slug being typed (HTMX asks for the callback block with it), else the form's.
    slug = request.args.get("slug", form.slug.data if form is not None else None)
    return page(
        NEW,
        ("callback",) if kind else (),
        status=status,
        client=client,
        form=form,
        kind=kind,
        kinds=PROVIDER_KINDS,
        type_error=type_error,
        descriptions=descriptions or {},
        callback=_callback_preview(kind, slug),
    )


def _callback_preview(kind: str | None, slug: str | None) -> dict:
    """The callback URL for the slug being typed, or why there is none yet."""
    if kind is None:
        return {}
    slug = (slug or "").strip() or idp_service.defaults(kind)["slug"]
    try:
        return {"url": idp_service.callback_url_for(idp_service.check_slug(slug))}
    except ValidationError as exc:
        return {"error": sentence("Slug", exc.reason) if slug else "Type a slug to see the address."}


@bp.route("/clients/<client_id>/identity-providers/new", methods=["GET", "POST"])
def idp_new(client_id):
    client = client_or_404(client_id)
    kind = request.values.get("type")
    if not kind:
        return new_page(client, None, None)
    try:
        defaults = idp_service.defaults(kind)
    except ValidationError as exc:
        return new_page(client, None, None, type_error=sentence("Type", exc.reason), status=INVALID)

    if request.method == "GET":
        form = ProviderForm(formdata=None, data={**_form_data(defaults), "type": kind})
        return new_page(client, form, kind, _with_roles(form, client))

    form = ProviderForm()
    descriptions = _with_roles(form, client)
    if form.validate_on_submit():
        fields = _settings(form, kind)
        # Left empty, the slug and the name are the type's (google, GitHub...).
        fields["name"] = (fields["name"] or "").strip() or None
        slug = (form.slug.data or "").strip() or None
        try:
            provider = idp_service.create_provider(
                client.client_id, kind, slug=slug, enabled=form.enabled.data, **fields
            )
        except ValidationError as exc:
            show_errors(form, exc)
        else:
            flash(
                f"Added {provider.name}. Register the callback URL below at {PROVIDER_KINDS[kind].party} "
                "if you have not yet.",
                "success",
            )
            return see_other(url_for("admin.idp_detail", client_id=client.client_id, slug=provider.slug))
    return new_page(client, form, kind, descriptions, status=INVALID)


# --- one provider: its settings, status and callback URL ----------------------------------


def provider_page(client, provider, submitted: dict | None = None, notice: dict | None = None, status: int = 200):
    """The provider's page; `submitted` is the form just posted (with its errors), the others start fresh."""
    forms = {
        "settings": ProviderForm(formdata=None, data=_form_data(idp_service.to_dict(provider))),
        "status": EnabledForm(formdata=None),
    }
    descriptions = _with_roles(forms["settings"], client)
    if submitted is not None:
        forms.update(submitted)
    return page(
        DETAIL,
        ("settings", "status"),
        status=status,
        client=client,
        provider=provider,
        forms=forms,
        notice=notice or {},
        descriptions=descriptions,
        linked=idp_service.identity_counts(client).get(provider.id, 0),
        callback=idp_service.callback_url(provider),
        kinds=PROVIDER_KINDS,
    )


@bp.get("/clients/<client_id>/identity-providers/<slug>")
def idp_detail(client_id, slug):
    client = client_or_404(client_id)
    return provider_page(client, provider_or_404(client, slug))


@bp.post("/clients/<client_id>/identity-providers/<slug>")
def idp_settings(client_id, slug):
    client = client_or_404(client_id)
    provider = provider_or_404(client, slug)
    form = ProviderForm()
    _with_roles(form, client)
    if form.validate_on_submit():
        try:
            provider = idp_service.update_provider(client.client_id, provider.slug, **_settings(form, provider.kind))
        except ValidationError as exc:
            show_errors(form, exc)
        else:
            secret = " The new client secret is in use." if form.client_secret.data else ""
            flash(f"Saved {provider.name}.{secret}", "success")
            return see_other(url_for("admin.idp_detail", client_id=client.client_id, slug=provider.slug))
    return provider_page(client, provider, {"settings": form}, status=INVALID)


@bp.post("/clients/<client_id>/identity-providers/<slug>/enabled")
def idp_enabled(client_id, slug):
    client = client_or_404(client_id)
    provider = provider_or_404(client, slug)
    form = EnabledForm()
    if not form.validate_on_submit() or form.enabled.data not in ("0", "1"):
        abort(400)
    provider = idp_service.set_enabled(client.client_id, provider.slug, form.enabled.data == "1")
    if provider.enabled:
        message = f"Enabled {provider.name}: the sign-in page shows “Continue with {provider.name}”."
    else:
        message = f"Disabled {provider.name}: it is off the sign-in page; its linked accounts stay."
    from_list = request.form.get("back") == "list"
    if is_htmx():
        if from_list:
            return providers_page(client, notice=message)
        return provider_page(client, provider, notice={"status": message})
    flash(message, "success")
    if from_list:
        return see_other(url_for("admin.idp_list", client_id=client.client_id))
    return see_other(url_for("admin.idp_detail", client_id=client.client_id, slug=provider.slug))


@bp.route("/clients/<client_id>/identity-providers/<slug>/delete", methods=["GET", "POST"])
def idp_delete(client_id, slug):
    client = client_or_404(client_id)
    provider = provider_or_404(client, slug)
    linked = idp_service.identity_counts(client).get(provider.id, 0)
    form = ConfirmForm()
    asked = False
    if form.validate_on_submit():
        if form.confirm.data != "yes":
            # Only the confirmation page's button deletes.
            asked = True
        else:
            gone = idp_service.delete_provider(client.client_id, provider.slug)
            accounts = f"{gone} linked account{'' if gone == 1 else 's'}"
            flash(f"Deleted {provider.name} ({provider.slug}) and unlinked {accounts}; the users stay.", "success")
            return see_other(url_for("admin.idp_list", client_id=client.client_id))
    return page(
        "admin/idp_delete.html",
        status=409 if asked else 200,
        client=client,
        provider=provider,
        linked=linked,
        form=form,
    )


# --- a user's linked accounts ----------------------------------------------------------


@bp.route("/clients/<client_id>/users/<username>/identities/<slug>/unlink", methods=["GET", "POST"])
def identity_unlink(client_id, username, slug):
    client = client_or_404(client_id)
    user = user_or_404(client, username)
    provider = provider_or_404(client, slug)
    identity = identity_service.identity_of(provider, user)
    if identity is None:
        abort(404)
    form = ConfirmForm()
    if form.validate_on_submit():
        # Unlinked meanwhile (another tab, another admin): what was asked for is done.
        with suppress(NotFound):
            identity_service.unlink(client.client_id, user.username, provider.slug)
        flash(f"Unlinked the {provider.name} account from {user.username}.", "success")
        return see_other(url_for("admin.user_detail", client_id=client.client_id, username=user.username))
    remaining = [method for method in identity_service.sign_in_methods(user) if method != provider.slug]
    return page(
        "admin/identity_unlink.html",
        client=client,
        user=user,
        provider=provider,
        identity=identity,
        form=form,
        remaining=remaining,
    )
