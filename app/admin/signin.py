"""Console sign-in through AuthGate's own hosted login: authorization code + PKCE for `authgate-console`.

/admin/login starts a real authorization request for the console's public client, keeping
state and the PKCE verifier in the session; the hosted /login page signs the user in;
/admin/callback checks state and redeems the code in-process (never an HTTP call to
itself), then lets in only an enabled user holding ROLE_AUTHGATE_ADMIN. Flask-Login's user
id is the console's browser session, so ending that session (here, on the hosted /logout
page, or when the user is disabled or loses the role) signs the admin out of the console.
"""

import hmac
from contextlib import ExitStack
from urllib.parse import urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import current_app, g, redirect, render_template, request, session, url_for
from flask_login import UserMixin, current_user, login_user, logout_user

from app.admin import bp
from app.admin.ui import is_htmx
from app.auth import browser
from app.extensions import db, login_manager
from app.models import BrowserSession, User
from app.oauth.inprocess import redeem_code
from app.services import audit, committed, sessions
from app.services import users as user_service
from app.services.clients import CONSOLE_ADMIN_ROLE, CONSOLE_CLIENT_ID, find_client

PENDING = "admin_signin"
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.callback", "admin.signed_out"})


class ConsoleAdmin(UserMixin):
    """A signed-in console admin; the id Flask-Login keeps is the console browser session's."""

    def __init__(self, session_id: str, user: User, browser_session: BrowserSession | None = None):
        self.session_id = session_id
        self.user = user
        self.browser_session = browser_session

    def get_id(self) -> str:
        return self.session_id

    @property
    def display_name(self) -> str:
        return self.user.full_name or self.user.username

    @property
    def actor(self) -> str:
        """How the audit log names the admin as the one who made a change."""
        return f"admin:{self.user.username}"


@login_manager.user_loader
def load_admin(session_id: str) -> ConsoleAdmin | None:
    """Called by Flask-Login on each request: the session must be live and its user still an admin."""
    console = find_client(CONSOLE_CLIENT_ID)
    found = sessions.find_active(session_id, console) if console else None
    if found is None:
        return None
    browser_session, user = found
    if not user_service.is_console_admin(user):
        return None
    return ConsoleAdmin(browser_session.id, user, browser_session)


@login_manager.unauthorized_handler
def unauthorized():
    """Called by Flask-Login for a console page without a signed-in admin: go and sign in."""
    wanted = request.full_path if request.method == "GET" and not is_htmx() else None
    target = url_for("admin.login", next=wanted) if wanted else url_for("admin.login")
    if is_htmx():
        # A fragment request must not swap the sign-in page into part of a page.
        return "", 401, {"HX-Redirect": target}
    return redirect(target)


@bp.before_request
def require_admin():
    """Every console page but sign-in itself needs a signed-in admin."""
    if request.endpoint not in PUBLIC_ENDPOINTS and not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.is_authenticated:
        if current_user.browser_session is not None:
            sessions.keep_alive(current_user.browser_session)  # using the console is activity of its session
        g.acting = ExitStack()
        g.acting.enter_context(audit.acting_as(current_user.actor))
    return None


@bp.teardown_request
def stop_acting(error):
    """The actor ends with the request, so a worker's next request does not inherit it."""
    acting = g.pop("acting", None)
    if acting is not None:
        acting.close()


def _issuer() -> str:
    return current_app.config["AUTHGATE_ISSUER"]


def _callback_uri() -> str:
    # Registered on the console's client by `flask init`.
    return f"{_issuer()}/admin/callback"


def _safe_next(value: str | None) -> str | None:
    """Only a console path of this server, never another site."""
    if not value or not value.startswith("/admin") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None


def _problem(title: str, message: str, status: int):
    return render_template("admin/signin_problem.html", title=title, message=message), status


@bp.get("/login")
def login():
    next_url = _safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("admin.dashboard"))
    issuer = _issuer()
    if request.url_root.rstrip("/") != issuer and not request.args.get("hop"):
        # The callback goes to the issuer's address, whose cookies must hold this sign-in's state:
        # start there. `hop` makes this happen once, even behind a proxy that hides the real host.
        return redirect(f"{issuer}/admin/login?" + urlencode({"hop": 1, **({"next": next_url} if next_url else {})}))
    console = find_client(CONSOLE_CLIENT_ID)
    if console is None:
        return _problem(
            "The console is not set up",
            "Run `flask --app wsgi init` on the server: it creates the console's client and its first admin.",
            503,
        )
    verifier = generate_token(48)
    state = generate_token(24)
    session[PENDING] = {"state": state, "verifier": verifier, "next": next_url}
    params = {
        "response_type": "code",
        "client_id": CONSOLE_CLIENT_ID,
        "redirect_uri": _callback_uri(),
        "scope": "openid profile",
        "state": state,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return redirect(url_for("auth.authorize") + "?" + urlencode(params))


@bp.get("/callback")
@committed
def callback():
    pending = session.pop(PENDING, None)
    state = request.args.get("state", "")
    if pending is None or not hmac.compare_digest(state, pending["state"]):
        return _problem(
            "This sign-in has expired",
            f"It was started too long ago, in another tab, or at another address than {_issuer()}. "
            "Open the console again and sign in.",
            400,
        )
    if request.args.get("error"):
        return _problem(
            "Sign-in did not finish",
            request.args.get("error_description") or f"The sign-in ended with {request.args['error']!r}.",
            400,
        )
    console = find_client(CONSOLE_CLIENT_ID)
    code = None
    if console is not None:
        code = redeem_code(request.args.get("code", ""), console, _callback_uri(), pending["verifier"])
    if code is None or code.session_id is None:
        return _problem("This sign-in has expired", "The sign-in code was used or is too old. Sign in again.", 400)
    user = db.session.get(User, code.user_id)
    if user is None or not user_service.is_console_admin(user):
        # End the sign-in, so that the next attempt asks who is signing in instead of looping.
        browser.forget_login(console)
        sessions.end([code.session_id], console)
        name = user.username if user else "This account"
        return render_template("admin/forbidden.html", username=name, role=CONSOLE_ADMIN_ROLE), 403
    login_user(ConsoleAdmin(code.session_id, user))
    return redirect(pending.get("next") or url_for("admin.dashboard"))


@bp.post("/logout")
@committed
def logout():
    console = find_client(CONSOLE_CLIENT_ID)
    ended = {browser.forget_login(console), current_user.get_id()}
    sessions.end([sid for sid in ended if sid], console)
    audit.record(audit.LOGOUT, client=console, user=current_user.user, ip=request.remote_addr)
    logout_user()
    return redirect(url_for("admin.signed_out"), 303)


@bp.get("/signed-out")
def signed_out():
    return render_template("admin/signed_out.html")
