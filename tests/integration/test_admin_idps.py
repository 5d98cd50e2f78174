"""Console identity providers of a client (list, new, edit, enable, delete) and a user's linked accounts (unlink)."""

import html
import re

import pytest
import sqlalchemy as sa
from markupsafe import escape

from app.extensions import db
from app.models import AuditEvent, IdentityProvider, LinkedIdentity
from app.services import clients as client_service
from app.services import identities, idps
from app.services import users as user_service
from tests.integration.helpers import post, set_up_console, sign_in, text

LIST = "/admin/clients/shop/identity-providers"
NEW = f"{LIST}/new"
SECRET = "upstream-secret-do-not-show"


@pytest.fixture
def admin(app, runner, client, make_client, make_role):
    set_up_console(app, runner)
    make_client(client_id="shop", name="Shop")
    make_client(client_id="blog", name="Blog")
    make_role("shop", "ROLE_VIEWER", "Can look")
    make_role("shop", "ROLE_EDITOR")
    make_role("blog", "ROLE_BLOGGER")
    sign_in(client)
    return client


def shop():
    return client_service.get_client("shop")


def provider(slug: str, client_id: str = "shop"):
    db.session.expire_all()
    return idps.find_provider(client_service.get_client(client_id), slug)


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def github(client_id="shop", **fields):
    fields.setdefault("upstream_client_id", "Iv1.abc")
    fields.setdefault("client_secret", SECRET)
    return idps.create_provider(client_id, "github", **fields)


def link(username: str, slug: str, subject: str, email: str | None = None, client_id: str = "shop"):
    client = client_service.get_client(client_id)
    identity = identities.add_identity(
        idps.get_provider(client, slug), user_service.get_user(client, username), subject, email
    )
    db.session.commit()
    return identity


def errors_by_field(page: str) -> dict[str, str]:
    """Each error message under the field whose input comes right before it (that is, next to its field)."""
    found = {}
    for error in re.finditer(r'class="field-error">(.*?)</div>', page):
        names = re.findall(r'name="([a-z_]+)"', page[: error.start()])
        found[names[-1]] = html.unescape(error.group(1))
    return found


FORMS = {
    "google": {"type": "google", "slug": "google", "name": "Google", "upstream_client_id": "123.apps.example",
               "client_secret": SECRET, "scopes": "openid email profile", "issuer": "https://accounts.google.com",
               "auto_create": "y", "enabled": "y"},
    "github": {"type": "github", "slug": "github", "name": "GitHub", "upstream_client_id": "Iv1.abc",
               "client_secret": SECRET, "scopes": "read:user user:email", "web_url": "https://github.com",
               "api_url": "https://api.github.com", "auto_create": "y", "enabled": "y"},
    "oidc": {"type": "oidc", "slug": "corp", "name": "Corp SSO", "upstream_client_id": "authgate",
             "client_secret": SECRET, "scopes": "openid email profile", "issuer": "https://sso.example.com/realms/corp",
             "auto_create": "y", "enabled": "y"},
}  # fmt: skip


def form(kind: str, **changes) -> dict:
    return {**FORMS[kind], **changes}


# --- the list --------------------------------------------------------------------------


def test_client_pages_have_an_identity_providers_tab(admin):
    for url in ("/admin/clients/shop", "/admin/clients/shop/roles", "/admin/clients/shop/users"):
        assert f'href="{LIST}"' in text(admin.get(url)) and "Identity providers" in text(admin.get(url))
    overview = text(admin.get("/admin/clients/shop"))
    assert "Sign-in options" in overview and "+ Add Google, GitHub or OpenID Connect" in overview


def test_an_empty_list_offers_each_type(admin):
    page = admin.get(LIST)
    assert page.status_code == 200
    assert "Shop has no identity providers" in text(page)
    for kind in ("google", "github", "oidc"):
        assert f'href="{NEW}?type={kind}"' in text(page)


def test_the_list_shows_type_slug_name_status_and_linked_users(admin, make_user):
    github(default_roles=["ROLE_VIEWER"])
    idps.create_provider(
        "shop", "oidc", slug="corp", name="Corp SSO", issuer="https://sso.example.com/realms/corp",
        upstream_client_id="x", client_secret="y", enabled=False, link_verified_email=True, auto_create=False,
    )  # fmt: skip
    github("blog", name="Blog's GitHub")
    make_user("shop", "alice")
    make_user("shop", "bob")
    link("alice", "github", "1001")
    link("bob", "github", "1002")
    page = text(admin.get(LIST))
    rows = re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", page, re.S)
    assert len(rows) == 2
    assert "GitHub" in rows[0] and ">github<" in rows[0] and "Enabled" in rows[0]
    assert "ROLE_VIEWER" in rows[0] and re.search(r'class="num">2</td>', rows[0])
    assert "Corp SSO" in rows[1] and ">corp<" in rows[1] and "OpenID Connect" in rows[1] and "Disabled" in rows[1]
    assert "sso.example.com/realms/corp" in rows[1] and "Not created" in rows[1] and "Links by email" in rows[1]
    assert re.search(r'class="num">0</td>', rows[1])
    assert "Blog&#39;s GitHub" not in page and SECRET not in page


def test_another_clients_provider_is_not_found_under_this_client(admin):
    github("blog")
    for url in (f"{LIST}/github", f"{LIST}/github/delete"):
        assert admin.get(url).status_code == 404
    assert post(admin, f"{LIST}/github", form("github", name="Taken over")).status_code == 404
    assert post(admin, f"{LIST}/github/enabled", {"enabled": "0"}).status_code == 404
    assert provider("github", "blog").name == "GitHub" and provider("github", "blog").enabled


# --- new -------------------------------------------------------------------------------


def test_new_asks_for_the_type_first(admin):
    page = text(admin.get(NEW))
    for kind, title in (("google", "Google"), ("github", "GitHub"), ("oidc", "OpenID Connect")):
        assert f'href="{NEW}?type={kind}"' in page and title in page
    bad = admin.get(f"{NEW}?type=saml")
    assert bad.status_code == 422 and "Type must be one of google, github, oidc." in text(bad)


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("github", {"slug": "github", "name": "GitHub", "web_url": "https://github.com",
                    "api_url": "https://api.github.com", "scopes": "read:user user:email"}),
        ("google", {"slug": "google", "name": "Google", "issuer": "https://accounts.google.com",
                    "scopes": "openid email profile"}),
        ("oidc", {"slug": "", "name": "", "issuer": "", "scopes": "openid email profile"}),
    ],
)  # fmt: skip
def test_the_form_starts_from_the_types_defaults(admin, kind, values):
    page = text(admin.get(f"{NEW}?type={kind}"))
    for name, value in values.items():
        assert re.search(rf'id="{name}" name="{name}" [^>]*value="{re.escape(value)}"', page), name
    assert '<input checked id="auto_create" name="auto_create" type="checkbox" value="y">' in page
    assert '<input id="link_verified_email" name="link_verified_email" type="checkbox" value="y">' in page
    assert "Account-takeover risk." in page
    # Only this client's roles can be default roles.
    assert 'value="ROLE_VIEWER"' in page and 'value="ROLE_EDITOR"' in page and "ROLE_BLOGGER" not in page
    if kind == "oidc":
        assert "Type a slug to see the address." in page
    else:
        assert f'<code id="callback-url" class="callback-value">http://localhost/login/{kind}/callback</code>' in page
        assert 'data-copy="callback-url"' in page


def test_the_callback_url_follows_the_slug_as_it_is_typed(admin):
    headers = {"HX-Request": "true", "HX-Target": "callback"}
    preview = admin.get(f"{NEW}?type=oidc&slug=corp", headers=headers)
    assert preview.status_code == 200
    assert text(preview).lstrip().startswith('<section id="callback"')
    assert "http://localhost/login/corp/callback" in text(preview) and "<form" not in text(preview)
    bad = text(admin.get(f"{NEW}?type=oidc&slug=Corp SSO", headers=headers))
    assert "Slug must be 1 to 64 lowercase letters" in bad and "callback-url" not in bad
    # GitHub's slug defaults to github.
    assert "http://localhost/login/github/callback" in text(admin.get(f"{NEW}?type=github&slug=", headers=headers))


def test_create_a_github_provider(admin):
    response = post(admin, NEW, form("github", default_roles=["ROLE_VIEWER", "ROLE_EDITOR"], web_url="https://ghe.example.com",
                                     api_url="https://ghe.example.com/api/v3"))  # fmt: skip
    assert response.status_code == 303 and response.headers["Location"] == f"{LIST}/github"
    made = provider("github")
    assert (made.kind, made.name, made.upstream_client_id) == ("github", "GitHub", "Iv1.abc")
    assert (made.web_url, made.api_url, made.issuer) == (
        "https://ghe.example.com",
        "https://ghe.example.com/api/v3",
        None,
    )
    assert made.scopes == ["read:user", "user:email"] and made.enabled and made.auto_create
    assert not made.link_verified_email
    assert [role.name for role in made.default_roles] == ["ROLE_EDITOR", "ROLE_VIEWER"]
    assert idps.client_secret_of(made) == SECRET and SECRET not in made.client_secret_encrypted
    page = text(admin.get(response.headers["Location"]))
    assert "Added GitHub. Register the callback URL below at GitHub" in page
    assert "http://localhost/login/github/callback" in page and 'data-copy="callback-url"' in page
    assert SECRET not in page


def test_create_an_oidc_provider_by_its_discovery_url_switched_off_and_linking_by_email(admin):
    data = form("oidc", issuer="https://sso.example.com/realms/corp/.well-known/openid-configuration",
                link_verified_email="y", enabled="", auto_create="")  # fmt: skip
    del data["enabled"], data["auto_create"]  # unticked boxes are not sent
    response = post(admin, NEW, data)
    assert response.status_code == 303 and response.headers["Location"] == f"{LIST}/corp"
    made = provider("corp")
    assert made.issuer == "https://sso.example.com/realms/corp" and made.name == "Corp SSO"
    assert made.link_verified_email and not made.enabled and not made.auto_create and made.default_roles == []


def test_empty_slug_and_name_take_the_types_own(admin):
    response = post(admin, NEW, form("google", slug="", name="", scopes="", issuer=""))
    assert response.status_code == 303
    made = provider("google")
    assert (made.name, made.issuer, made.scopes) == (
        "Google",
        "https://accounts.google.com",
        ["openid", "email", "profile"],
    )


@pytest.mark.parametrize(
    ("kind", "changes", "field", "error"),
    [
        ("oidc", {"slug": ""}, "slug", "Slug is required for an OpenID Connect provider"),
        ("github", {"slug": "Git Hub"}, "slug", "Slug must be 1 to 64 lowercase letters, digits and hyphens"),
        ("google", {"slug": "taken"}, "slug", "Client 'shop' already has an identity provider 'taken'."),
        ("oidc", {"name": ""}, "name", "Display name is required (it is shown on the button"),
        ("google", {"name": "x" * 121}, "name", "Display name must be at most 120 characters."),
        ("github", {"upstream_client_id": ""}, "upstream_client_id", "Client ID is required: the client id this"),
        ("github", {"upstream_client_id": "a b"}, "upstream_client_id", "Client ID must be at most 255 characters"),
        ("github", {"client_secret": ""}, "client_secret", "Client secret is required: the client secret this server"),
        ("github", {"client_secret": "x" * 1001}, "client_secret", "Client secret must be at most 1000 characters."),
        ("google", {"scopes": "email profile"}, "scopes", "Scopes must include openid for an OpenID Connect provider."),
        ("github", {"scopes": "read:user"}, "scopes", "Scopes must include user:email"),
        ("oidc", {"scopes": 'openid "x"'}, "scopes", "is not a valid scope"),
        ("oidc", {"issuer": ""}, "issuer", "Issuer URL is required."),
        ("oidc", {"issuer": "http://sso.example.com"}, "issuer", "plain http is only allowed for localhost"),
        ("oidc", {"issuer": "https://sso.example.com/#x"}, "issuer", "must not have a query or fragment"),
        ("google", {"issuer": "ftp://accounts.example.com"}, "issuer", "must be an absolute https URL"),
        ("github", {"web_url": "http://ghe.example.com"}, "web_url", "plain http is only allowed for localhost"),
        ("github", {"api_url": "https://ghe.example.com/api v3"}, "api_url", "API URL must be one URL"),
        ("github", {"default_roles": ["ROLE_BLOGGER"]}, "default_roles", "Client 'shop' has no role 'ROLE_BLOGGER'."),
    ],
)  # fmt: skip
def test_new_provider_errors_show_next_to_their_field_and_keep_what_was_typed(admin, kind, changes, field, error):
    idps.create_provider("shop", "google", slug="taken", upstream_client_id="x", client_secret="y")
    data = form(kind, **changes)
    response = post(admin, NEW, data)
    assert response.status_code == 422
    page = text(response)
    assert error in errors_by_field(page).get(field, ""), errors_by_field(page)
    assert count(IdentityProvider) == 1
    # What was typed is kept, except the secret, which is never sent back.
    assert SECRET not in page and "x" * 1001 not in page
    if field not in ("client_secret", "default_roles"):
        assert f'value="{escape(data[field])}"' in page
    assert 'value="ROLE_VIEWER"' in page and 'value="ROLE_BLOGGER"' not in page


def test_a_forged_type_is_refused_with_the_types_to_choose(admin):
    response = post(admin, NEW, form("google", type="saml"))
    assert response.status_code == 422 and "Type must be one of google, github, oidc." in text(response)
    assert count(IdentityProvider) == 0


def test_every_form_needs_the_csrf_token(admin):
    github()
    for url, data in (
        (NEW, form("github", slug="gh2")),
        (f"{LIST}/github", {"name": "X"}),
        (f"{LIST}/github/enabled", {"enabled": "0"}),
        (f"{LIST}/github/delete", {"confirm": "yes"}),
    ):
        response = admin.post(url, data=data)
        assert response.status_code in (400, 422), url
    assert count(IdentityProvider) == 1 and provider("github").name == "GitHub" and provider("github").enabled


# --- edit ------------------------------------------------------------------------------


def settings_of(slug: str, **changes) -> dict:
    """The provider's page form as it is shown (the secret empty), with `changes`."""
    data = idps.to_dict(provider(slug))
    fields = {
        name: data[name] for name in ("name", "upstream_client_id", "web_url", "api_url", "issuer") if name in data
    }
    fields.update(scopes=" ".join(data["scopes"]), default_roles=data["default_roles"], client_secret="")
    fields.update({name: "y" for name in ("auto_create", "link_verified_email") if data[name]})
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not None}


def test_the_provider_page_shows_its_settings_but_never_the_secret(admin):
    github(default_roles=["ROLE_VIEWER"])
    page = text(admin.get(f"{LIST}/github"))
    assert 'value="Iv1.abc"' in page and 'value="https://api.github.com"' in page
    assert re.search(r'name="default_roles" value="ROLE_VIEWER" checked', page)
    assert SECRET not in page and re.search(
        r'id="client_secret" name="client_secret" placeholder="[^"]*" type="password" value="">', page
    )
    assert "Leave empty to keep the current one." in page
    assert "http://localhost/login/github/callback" in page and "fixed: it is in registered URLs" in page
    assert 'name="slug"' not in page and 'name="type"' not in page
    assert 'name="issuer"' not in page  # GitHub has web and API URLs instead


def test_save_settings_keeps_the_secret_when_left_empty(admin):
    github(default_roles=["ROLE_VIEWER"])
    changes = settings_of("github", name="GitHub Enterprise", web_url="https://ghe.example.com",
                          api_url="https://ghe.example.com/api/v3", default_roles=["ROLE_EDITOR"],
                          link_verified_email="y", auto_create=None)  # fmt: skip
    response = post(admin, f"{LIST}/github", changes)
    assert response.status_code == 303 and response.headers["Location"] == f"{LIST}/github"
    saved = provider("github")
    assert (saved.name, saved.web_url, saved.api_url) == (
        "GitHub Enterprise",
        "https://ghe.example.com",
        "https://ghe.example.com/api/v3",
    )
    assert [role.name for role in saved.default_roles] == ["ROLE_EDITOR"]
    assert saved.link_verified_email and not saved.auto_create
    assert idps.client_secret_of(saved) == SECRET
    assert "Saved GitHub Enterprise." in text(admin.get(response.headers["Location"]))

    replaced = post(admin, f"{LIST}/github", settings_of("github", client_secret="a-new-secret", default_roles=[]))
    assert replaced.status_code == 303 and idps.client_secret_of(provider("github")) == "a-new-secret"
    assert provider("github").default_roles == []
    assert "The new client secret is in use." in text(admin.get(replaced.headers["Location"]))


@pytest.mark.parametrize(
    ("slug", "changes", "field", "error"),
    [
        ("github", {"name": ""}, "name", "Display name is required"),
        ("github", {"upstream_client_id": ""}, "upstream_client_id", "Client ID is required"),
        ("github", {"scopes": ""}, "scopes", "Scopes must include user:email"),
        ("github", {"web_url": ""}, "web_url", "Web URL is required."),
        ("github", {"api_url": "https://api.example.com?x=1"}, "api_url", "must not have a query or fragment"),
        ("github", {"default_roles": ["ROLE_BLOGGER"]}, "default_roles", "has no role 'ROLE_BLOGGER'"),
        ("corp", {"issuer": "http://sso.example.com"}, "issuer", "use https"),
        ("corp", {"issuer": ""}, "issuer", "Issuer URL is required."),
        ("corp", {"scopes": "email"}, "scopes", "Scopes must include openid"),
    ],
)
def test_settings_errors_show_next_to_their_field_and_change_nothing(admin, slug, changes, field, error):
    github()
    idps.create_provider("shop", "oidc", slug="corp", name="Corp SSO", issuer="https://sso.example.com",
                         upstream_client_id="x", client_secret=SECRET)  # fmt: skip
    before = idps.to_dict(provider(slug))
    response = post(admin, f"{LIST}/{slug}", settings_of(slug, client_secret="typed-but-refused", **changes))
    assert response.status_code == 422
    page = text(response)
    assert error in errors_by_field(page).get(field, ""), errors_by_field(page)
    assert "typed-but-refused" not in page and SECRET not in page
    assert idps.to_dict(provider(slug)) == before
    assert idps.client_secret_of(provider(slug)) == SECRET


def test_settings_over_htmx_swap_the_form_with_its_errors(admin):
    github()
    headers = {"HX-Request": "true", "HX-Target": "settings"}
    bad = post(admin, f"{LIST}/github", settings_of("github", name=""), headers=headers)
    assert bad.status_code == 422 and text(bad).lstrip().startswith('<section id="settings"')
    assert "Display name is required" in text(bad)
    good = post(admin, f"{LIST}/github", settings_of("github", name="GH"), headers=headers)
    assert good.status_code == 200 and good.headers["HX-Redirect"] == f"{LIST}/github"


# --- enable, disable, delete -----------------------------------------------------------


def test_disable_and_enable_from_the_list_and_from_the_page(admin):
    github()
    response = post(admin, f"{LIST}/github/enabled", {"enabled": "0", "back": "list"})
    assert response.status_code == 303 and response.headers["Location"] == LIST
    assert not provider("github").enabled
    assert "Disabled GitHub: it is off the sign-in page" in text(admin.get(LIST))
    again = post(admin, f"{LIST}/github/enabled", {"enabled": "1"})
    assert again.status_code == 303 and again.headers["Location"] == f"{LIST}/github"
    assert provider("github").enabled

    swapped = post(admin, f"{LIST}/github/enabled", {"enabled": "0", "back": "list"},
                   headers={"HX-Request": "true", "HX-Target": "providers"})  # fmt: skip
    assert swapped.status_code == 200 and text(swapped).lstrip().startswith('<div id="providers"')
    assert "Disabled GitHub" in text(swapped) and ">Enable</button>" in text(swapped)
    status = post(
        admin, f"{LIST}/github/enabled", {"enabled": "1"}, headers={"HX-Request": "true", "HX-Target": "status"}
    )
    assert status.status_code == 200 and text(status).lstrip().startswith('<section id="status"')
    assert "Enabled GitHub" in text(status) and provider("github").enabled
    assert post(admin, f"{LIST}/github/enabled", {"enabled": "maybe"}).status_code == 400


def test_delete_says_how_many_linked_identities_go_with_it(admin, make_user):
    github()
    make_user("shop", "alice")
    make_user("shop", "bob", password=None)
    link("alice", "github", "1001")
    link("bob", "github", "1002")
    page = admin.get(f"{LIST}/github/delete")
    assert page.status_code == 200
    assert "<strong>2 linked identities</strong>" in text(page) and "Delete GitHub and 2 linked identities" in text(
        page
    )
    # Only the confirmation page's button deletes.
    unconfirmed = post(admin, f"{LIST}/github/delete")
    assert unconfirmed.status_code == 409 and provider("github") is not None
    response = post(admin, f"{LIST}/github/delete", {"confirm": "yes"})
    assert response.status_code == 303 and response.headers["Location"] == LIST
    assert provider("github") is None and count(LinkedIdentity) == 0
    assert user_service.find_user(shop(), "bob") is not None
    assert "Deleted GitHub (github) and unlinked 2 linked accounts; the users stay." in text(admin.get(LIST))


def test_delete_without_linked_identities(admin):
    github()
    assert "No user has linked a GitHub account yet." in text(admin.get(f"{LIST}/github/delete"))
    assert post(admin, f"{LIST}/github/delete", {"confirm": "yes"}).status_code == 303
    assert provider("github") is None


# --- a user's linked accounts ----------------------------------------------------------


def test_the_user_page_lists_linked_accounts(admin, make_user):
    github()
    idps.create_provider("shop", "oidc", slug="corp", name="Corp SSO", issuer="https://sso.example.com",
                         upstream_client_id="x", client_secret="y", enabled=False)  # fmt: skip
    make_user("shop", "alice")
    make_user("shop", "bob")
    link("alice", "github", "4242", "alice@users.example.com")
    link("alice", "corp", "f3c1-uuid", None)
    link("bob", "github", "5151", "bob@example.com")
    page = text(admin.get("/admin/clients/shop/users/alice"))
    section = page[page.index('<section id="identities"') :]
    section = section[: section.index("</section>")]
    assert "GitHub" in section and ">github<" in section and "4242" in section and "alice@users.example.com" in section
    assert "Corp SSO" in section and "f3c1-uuid" in section and "Disabled" in section
    assert section.count("<time") == 4 and "5151" not in section
    assert 'href="/admin/clients/shop/users/alice/identities/github/unlink"' in section
    assert re.search(
        r"Signs in with: <span class=\"tag\">password</span><code class=\"tag\">github</code></p>", section
    )
    assert "5151" in text(admin.get("/admin/clients/shop/users/bob"))


def test_a_user_without_linked_accounts(admin, make_user):
    make_user("shop", "alice")
    page = text(admin.get("/admin/clients/shop/users/alice"))
    assert "Linked accounts" in page and "None yet. When alice signs in with Google, GitHub" in page


def test_unlink_asks_first_then_unlinks_and_records_it(admin, make_user):
    github()
    make_user("shop", "alice")
    link("alice", "github", "4242", "alice@users.example.com")
    url = "/admin/clients/shop/users/alice/identities/github/unlink"
    page = admin.get(url)
    assert page.status_code == 200
    assert (
        "Unlink GitHub from alice?" in text(page) and "4242" in text(page) and "alice@users.example.com" in text(page)
    )
    assert "cannot sign in until you" not in text(page)  # alice has a password
    response = post(admin, url)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/clients/shop/users/alice"
    assert count(LinkedIdentity) == 0 and user_service.find_user(shop(), "alice") is not None
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.kind == "identity_unlinked"))
    assert event is not None and event.detail == {"idp": "github"}
    assert "Unlinked the GitHub account from alice." in text(admin.get(response.headers["Location"]))
    assert admin.get(url).status_code == 404


def test_unlinking_the_last_way_in_warns(admin, make_user):
    github()
    make_user("shop", "carol", password=None)
    link("carol", "github", "77")
    page = text(admin.get("/admin/clients/shop/users/carol/identities/github/unlink"))
    assert "carol has no password and no other enabled provider" in page


def test_unlink_stays_inside_the_client(admin, make_user):
    github()
    github("blog")
    make_user("shop", "alice")
    make_user("blog", "alice")
    link("alice", "github", "1", client_id="blog")
    # Shop's alice has no GitHub link; blog's is not reachable through shop's URLs.
    assert admin.get("/admin/clients/shop/users/alice/identities/github/unlink").status_code == 404
    assert post(admin, "/admin/clients/shop/users/alice/identities/github/unlink").status_code == 404
    assert admin.get("/admin/clients/shop/users/alice/identities/nope/unlink").status_code == 404
    assert count(LinkedIdentity) == 1
