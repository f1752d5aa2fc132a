"""The sandbox mailbox: every message its SMTP server accepted.

send-test-email really sends; tests then look here for what arrived
(`sb.mailbox`, list-like, with `for_recipient` and `clear`). Safe to read from
any thread while the SMTP server (on the event loop) adds to it.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from email.message import EmailMessage

from reconciler.values import valueclass


@valueclass
class ReceivedMessage:
    """One message the sandbox SMTP server accepted.

    `body` is the text part without its trailing line ends; `raw` is exactly
    what was received; `login` is the AUTH identity that sent it.
    """

    envelope_from: str
    envelope_to: tuple[str, ...]
    login: str
    listener: str
    headers: dict[str, str]
    subject: str
    body: str
    raw: bytes

    @property
    def recipients(self) -> tuple[str, ...]:
        """The envelope recipients (same as `envelope_to`)."""
        return self.envelope_to

    @property
    def from_header(self) -> str:
        return self.headers.get("From", "")

    @property
    def to_header(self) -> str:
        return self.headers.get("To", "")


class Mailbox:
    """Every accepted message, in arrival order; safe to read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []

    def add(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the messages received so far."""
        with self._lock:
            return list(self._messages)

    def for_recipient(self, address: str) -> list[ReceivedMessage]:
        """The messages whose envelope included `address` (case-insensitive)."""
        wanted = address.lower()
        return [m for m in self.messages() if wanted in (a.lower() for a in m.envelope_to)]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def __iter__(self) -> Iterator[ReceivedMessage]:
        return iter(self.messages())

    def __getitem__(self, index: int) -> ReceivedMessage:
        with self._lock:
            return self._messages[index]


def parse_message(
    raw: bytes, envelope_from: str, envelope_to: list[str], login: str, listener: str
) -> ReceivedMessage:
    """A received message, with its headers and text body parsed."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    body = ""
    if isinstance(parsed, EmailMessage):
        part = parsed.get_body(preferencelist=("plain", "html"))
        if part is not None:
            body = str(part.get_content()).rstrip("\r\n")
    return ReceivedMessage(
        envelope_from=envelope_from,
        envelope_to=tuple(envelope_to),
        login=login,
        listener=listener,
        headers={key: str(value) for key, value in parsed.items()},
        subject=str(parsed.get("Subject", "")),
        body=body,
        raw=raw,
    )
