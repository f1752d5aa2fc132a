"""aiosmtpd's SMTP protocol with less work per connection and per reply.

Every sandbox check is one short SMTP session (greeting, EHLO, AUTH, QUIT),
so what aiosmtpd does once per connection or once per command is most of the
SMTP server's CPU. `LeanSession` keeps aiosmtpd's protocol handling and, only
through what aiosmtpd offers a subclass or a handler, changes what it costs:

    making a session  aiosmtpd finds the commands, AUTH mechanisms and handler
                      hooks with dir() and inspect.getmembers() on every
                      connection; `dir()` here lists only those names
    EHLO              the reply's lines in one write instead of one per line
                      (`push`, which aiosmtpd gives handlers to reply with)

aiosmtpd 1.4 logs a deprecation warning (`Session.login_data`) on every
successful AUTH; `quiet_login_data` drops that one message.

bench/NOTES.md ("Sandbox SMTP checks") has the figures.
"""

from __future__ import annotations

import logging
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP

# aiosmtpd looks up a session's commands, AUTH mechanisms and handler hooks by
# these name prefixes, with dir() and inspect.getmembers(), on every new
# connection. On the session object that evaluates every one of its attributes,
# properties included: most of the cost of making a session.
_HOOK_PREFIXES = ("smtp_", "auth_", "handle_")
_HOOK_NAMES: dict[type, list[str]] = {}


class HooksOnlyDir:
    """`dir()` lists only the names aiosmtpd looks hooks up by (cached per class).

    What aiosmtpd finds is unchanged (tests/sandbox/test_smtp.py compares the
    commands and AUTH mechanisms a session offers with a plain aiosmtpd
    session's); only the cost of finding them changes.
    """

    def __dir__(self) -> list[str]:
        names = _HOOK_NAMES.get(type(self))
        if names is None:
            names = [n for n in super().__dir__() if n.startswith(_HOOK_PREFIXES)]
            _HOOK_NAMES[type(self)] = names
        return list(names)


class LeanSession(HooksOnlyDir, SMTP):
    """aiosmtpd's SMTP protocol for one connection, cheaper to make and to run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._held: list[str] = []
        super().__init__(*args, **kwargs)

    async def push(self, status: AnyStr) -> None:
        """Send a multi-line reply (EHLO's) in one write, not one write per line
        (each a packet the client wakes up for)."""
        if isinstance(status, str) and status[3:4] == "-":
            self._held.append(status)
            return
        if self._held:
            last = status if isinstance(status, str) else status.decode("ascii", "replace")
            reply = "\r\n".join([*self._held, last])
            self._held.clear()
            await super().push(reply)
            return
        await super().push(status)


class _NoLoginDataWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Session.login_data is deprecated")


_QUIET = _NoLoginDataWarning()


def quiet_login_data() -> None:
    """Drop aiosmtpd's deprecation warning for `Session.login_data`, which it
    logs on its own every time a login succeeds (and which, with no handler of
    the `mail.log` logger configured, Python would print on stderr)."""
    logging.getLogger("mail.log").addFilter(_QUIET)  # adding it twice keeps one
