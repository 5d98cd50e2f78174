"""A real SMTP server on loopback (aiosmtpd) that keeps every message it is given, for the tests."""

import email
import email.policy
import re
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.integration.serving import free_port

LINK = re.compile(r"https?://[^\s\"'<>]+/(?:verify|reset)/agl_[A-Za-z0-9_-]+(?:\?rid=[A-Za-z0-9_-]+)?")


class _Keep:
    def __init__(self, box: "Mailbox"):
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.box.arrived:
            self.box.messages.append(message)
            self.box.recipients.append(list(envelope.rcpt_tos))
            self.box.arrived.notify_all()
        return "250 OK"


class Mailbox:
    """Messages the SMTP server at `url` received, oldest first."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.arrived = threading.Condition()
        self.port = free_port()
        self.controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}"

    def clear(self) -> None:
        with self.arrived:
            self.messages.clear()
            self.recipients.clear()

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> EmailMessage:
        """The `count`-th message to `address`, once it has arrived (an AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.to(address)) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"no message #{count} to {address} within {timeout} s; got {self.summary()}"
                self.arrived.wait(left)
            return self.to(address)[count - 1]

    def summary(self) -> list[tuple[str, str]]:
        return [(str(m["To"]), str(m["Subject"])) for m in self.messages]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None, "the message has no text part"
    return body.get_content()


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None, "the message has no HTML part"
    return body.get_content()


def link_in(message: EmailMessage) -> str:
    """The verification or reset link in a message (the same in its text and HTML parts)."""
    found = LINK.findall(text_of(message))
    assert found, f"no link in: {text_of(message)!r}"
    assert LINK.findall(html_of(message))[0].replace("&amp;", "&") == found[0]
    return found[0]
