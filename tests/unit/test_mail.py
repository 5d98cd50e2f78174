"""Outgoing mail: the SMTP URL, both parts of a message, failures that tell the user to try again, and
the log instead of a server in development."""

import logging

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from app.config import ConfigError, parse_smtp_url
from app.services import mail
from tests.integration.serving import free_port
from tests.mailbox import html_of, text_of


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("smtp://mail.example.com", ("smtp", "mail.example.com", 25, None, None)),
        ("smtps://mail.example.com", ("smtps", "mail.example.com", 465, None, None)),
        ("smtp+starttls://me%40example.com:p%40ss@mail.example.com:2587",
         ("smtp+starttls", "mail.example.com", 2587, "me@example.com", "p@ss")),
    ],
)  # fmt: skip
def test_smtp_urls(url, parts):
    parsed = parse_smtp_url(url)
    assert (parsed["scheme"], parsed["host"], parsed["port"], parsed["user"], parsed["password"]) == parts


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mail.example.com", "must start with smtp://"),
        ("mail.example.com:25", "must start with smtp://"),
        ("smtp://mail.example.com:99999", "port that is not a number"),
        ("smtp://:25", "names no host"),
    ],
)
def test_bad_smtp_urls_are_named(url, message):
    with pytest.raises(ConfigError, match=message):
        parse_smtp_url(url)


def test_a_message_has_a_text_and_an_html_part_naming_the_client(app, mailbox):
    with app.app_context():

        class Named:
            name = "Shop <&> Co"

        class Person:
            first_name, username = "Ann", "ann"

        message = mail.compose("ann@example.com", "Reset your password", "reset_password",
                               client=Named(), user=Person(), url="http://id.test/reset/agl_x", minutes=30)  # fmt: skip
        mail.send(message)
    received = mailbox.wait_for("ann@example.com")
    assert received["From"] == "AuthGate <no-reply@authgate.test>"
    assert "Shop <&> Co account (ann)" in text_of(received)
    assert "Shop &lt;&amp;&gt; Co" in html_of(received)
    assert "http://id.test/reset/agl_x" in html_of(received)


def test_a_server_that_does_not_answer_is_a_failure_to_retry_and_the_log_keeps_the_link_out(app, caplog):
    app.config["AUTHGATE_SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
    with app.app_context():
        message = mail.compose("ann@example.com", "Subject", "reset_password", client={"name": "Shop"},
                               user={"username": "ann"}, url="http://id.test/reset/agl_secret", minutes=30)  # fmt: skip
        with caplog.at_level(logging.ERROR, logger="authgate.mail"), pytest.raises(mail.MailFailed, match="Try again"):
            mail.send(message)
    assert "could not send mail to a recipient at example.com" in caplog.text
    assert "agl_secret" not in caplog.text and "ann@" not in caplog.text


def test_the_smtp_login_is_used_when_the_url_has_one(app):
    seen = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            seen.append(envelope.rcpt_tos)
            return "250 OK"

    port = free_port()
    server = Controller(Keep(), hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False)
    server.start()
    try:
        with app.app_context():
            message = mail.compose("bo@example.com", "S", "reset_password", client={"name": "Shop"},
                                   user={"username": "bo"}, url="http://id.test/reset/agl_x", minutes=30)  # fmt: skip
            app.config["AUTHGATE_SMTP_URL"] = f"smtp://relay:s3cret@127.0.0.1:{port}"
            mail.send(message)
    finally:
        server.stop()
    assert seen == [(b"relay", b"s3cret"), ["bo@example.com"]]


def test_development_without_smtp_prints_the_message_to_the_log(app, caplog):
    app.config["AUTHGATE_SMTP_URL"] = None
    with app.app_context():
        assert mail.available() and mail.unavailable_reason() is None
        message = mail.compose("ann@example.com", "Verify", "reset_password", client={"name": "Shop"},
                               user={"username": "ann"}, url="http://id.test/reset/agl_dev", minutes=30)  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="authgate.mail"):
            mail.send(message)
    assert "AUTHGATE_SMTP_URL is not set, so this message was NOT sent" in caplog.text
    assert "http://id.test/reset/agl_dev" in caplog.text


def test_production_without_smtp_has_no_mail_and_says_why(app):
    app.config.update(AUTHGATE_SMTP_URL=None, AUTHGATE_ENV="production")
    with app.app_context():
        assert not mail.available()
        assert "AUTHGATE_SMTP_URL is not set" in mail.unavailable_reason()
        message = mail.compose("a@example.com", "S", "reset_password", client={"name": "Shop"},
                               user={"username": "a"}, url="http://id.test/reset/agl_x", minutes=30)  # fmt: skip
        with pytest.raises(mail.MailUnavailable):
            mail.send(message)
