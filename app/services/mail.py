"""Outgoing mail: verification and password-reset links, over SMTP (AUTHGATE_SMTP_URL).

Every message goes out in text and HTML, rendered from `templates/mail/<name>.txt` and `.html`.
Sending waits at most AUTHGATE_SMTP_TIMEOUT seconds; a failure is logged (never the message's
links) and raised as `MailFailed`, which the pages turn into "try again". Without an SMTP server a
development or test server writes each message to its log instead, with a notice saying so; a
production server has no mail, and the features that need it are off (`unavailable_reason`).

What must not make a request wait or tell by its timing whether an account exists (a reset
request) runs on the outbox: a few background threads per worker, each with the app's context.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import urlsplit

from flask import Flask, current_app, render_template

from app.config import parse_smtp_url
from app.services import ServiceError

log = logging.getLogger("authgate.mail")

# Background sends one worker runs at once; beyond that a job is dropped (and logged), not queued.
OUTBOX_THREADS = 4


class MailFailed(ServiceError):
    """The SMTP server did not take the message; the person should try again later."""


class MailUnavailable(ServiceError):
    """This server sends no mail (production without AUTHGATE_SMTP_URL)."""


def configured() -> bool:
    return bool(current_app.config["AUTHGATE_SMTP_URL"])


def unavailable_reason() -> str | None:
    """Why the features that need mail are off, or None when mail goes out (or to the log, in development)."""
    if configured() or current_app.config["AUTHGATE_ENV"] != "production":
        return None
    return (
        "AUTHGATE_SMTP_URL is not set, so this server sends no mail: self-registration, email "
        "verification and password reset are off."
    )


def available() -> bool:
    return unavailable_reason() is None


def sender() -> str:
    configured_from = current_app.config["AUTHGATE_MAIL_FROM"]
    if configured_from:
        return configured_from
    host = urlsplit(current_app.config["AUTHGATE_ISSUER"]).hostname or "localhost"
    return formataddr(("AuthGate", f"no-reply@{host}"))


def compose(to: str, subject: str, template: str, **context) -> EmailMessage:
    """A message in text and HTML from the `mail/<template>` pair, with `context`."""
    message = EmailMessage()
    message["From"] = sender()
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=urlsplit(current_app.config["AUTHGATE_ISSUER"]).hostname)
    context = {"subject": subject, **context}
    message.set_content(render_template(f"mail/{template}.txt", **context))
    message.add_alternative(render_template(f"mail/{template}.html", **context), subtype="html")
    return message


def send(message: EmailMessage) -> None:
    """Hand a message to the SMTP server (or, in development without one, to the log); raise MailFailed."""
    url = current_app.config["AUTHGATE_SMTP_URL"]
    if not url:
        if current_app.config["AUTHGATE_ENV"] == "production":
            raise MailUnavailable("this server sends no mail (AUTHGATE_SMTP_URL is not set)")
        text = message.get_body(("plain",))
        log.warning(
            "AUTHGATE_SMTP_URL is not set, so this message was NOT sent; it is printed here instead "
            "(development only):\nTo: %s\nSubject: %s\n\n%s",
            message["To"], message["Subject"], text.get_content() if text else "",
        )  # fmt: skip
        return
    settings = parse_smtp_url(url)
    timeout = current_app.config["AUTHGATE_SMTP_TIMEOUT"]
    try:
        if settings["scheme"] == "smtps":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings["host"], settings["port"], timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(settings["host"], settings["port"], timeout=timeout)
        with smtp:
            if settings["scheme"] == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings["user"]:
                smtp.login(settings["user"], settings["password"] or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        # The reason and the recipient's domain only: the message holds a one-time link.
        domain = str(message["To"]).rpartition("@")[2]
        log.error("could not send mail to a recipient at %s through %s:%s: %s: %s",
                  domain, settings["host"], settings["port"], type(error).__name__, error)  # fmt: skip
        raise MailFailed("The email could not be sent. Try again in a few minutes.") from None


class Outbox:
    """Run mail jobs on background threads of this worker, each inside the app's context."""

    def __init__(self, app: Flask, threads: int = OUTBOX_THREADS):
        self.app = app
        self._slots = threading.BoundedSemaphore(threads)
        self._running: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> bool:
        """Start `job` in the background; False (logged) when every thread is busy."""
        if not self._slots.acquire(blocking=False):
            log.error("every mail thread is busy; a message was dropped")
            return False
        thread = threading.Thread(target=self._run, args=(job,), name="authgate-mail", daemon=True)
        with self._lock:
            self._running.add(thread)
        thread.start()
        return True

    def _run(self, job: Callable[[], None]) -> None:
        from app.extensions import db

        try:
            with self.app.app_context():
                try:
                    job()
                except MailFailed:
                    pass  # logged by send
                except Exception:
                    log.exception("a background mail job failed")
                finally:
                    db.session.remove()
        finally:
            self._slots.release()
            with self._lock:
                self._running.discard(threading.current_thread())

    def wait(self, timeout: float = 10.0) -> None:
        """Wait for the jobs started so far (tests, shutdown)."""
        with self._lock:
            running = list(self._running)
        for thread in running:
            thread.join(timeout)


def outbox() -> Outbox:
    from app.runtime import runtime

    return runtime().outbox
