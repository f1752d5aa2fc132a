"""aiosmtpd's SMTP protocol with less work per connection and per reply.

Every sandbox check is one short SMTP session (greeting, EHLO, AUTH, QUIT),
so what aiosmtpd does once per connection or once per command is most of the
SMTP server's CPU. `LeanSession` keeps aiosmtpd's protocol handling and
changes only how much that costs:

    making a session  aiosmtpd finds the commands, AUTH mechanisms and handler
                      hooks with dir() and inspect.getmembers() on every
                      connection; `dir()` here lists only those names
    idle timeout      one timer per session instead of a new one per command
    EHLO              the reply's lines in one write instead of one per line
    AUTH              no deprecation warning logged (then dropped) per login

bench/NOTES.md ("Sandbox SMTP checks") has the figures.
"""

from __future__ import annotations

from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Session

# aiosmtpd looks up a session's commands, AUTH mechanisms and handler hooks by
# these name prefixes, with dir() and inspect.getmembers(), on every new
# connection. On the session object that evaluates every one of its attributes,
# properties included: most of the cost of making a session.
_HOOK_PREFIXES = ("smtp_", "auth_", "handle_")
_HOOK_NAMES: dict[type, list[str]] = {}


class HooksOnlyDir:
    """`dir()` lists only the names aiosmtpd looks hooks up by (cached per class).

    What aiosmtpd finds is unchanged (tests/sandbox/test_smtp.py compares it
    with a plain aiosmtpd session's); only the cost of finding it changes.
    """

    def __dir__(self) -> list[str]:
        names = _HOOK_NAMES.get(type(self))
        if names is None:
            names = [n for n in super().__dir__() if n.startswith(_HOOK_PREFIXES)]
            _HOOK_NAMES[type(self)] = names
        return list(names)


class _QuietSession(Session):
    """aiosmtpd sets the deprecated `login_data` on every successful AUTH, and
    its property logs a deprecation warning each time (a log record made, then
    dropped). Here it is a plain attribute."""

    login_data: Any = None


class LeanSession(HooksOnlyDir, SMTP):
    """aiosmtpd's SMTP protocol for one connection, cheaper to make and to run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._held: list[str] = []
        self._deadline = 0.0
        super().__init__(*args, **kwargs)

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Push the idle deadline back. aiosmtpd does this on every command by
        cancelling its timer and scheduling a new one; one timer per session
        that re-arms itself when it fires before the deadline is cheaper, and
        keeps the loop's timer heap free of cancelled timers."""
        self._deadline = self.loop.time() + (duration or self._timeout_duration)
        if self._timeout_handle is None:
            self._timeout_handle = self.loop.call_at(self._deadline, self._idle_check)

    def _idle_check(self) -> None:
        if self.loop.time() < self._deadline:
            self._timeout_handle = self.loop.call_at(self._deadline, self._idle_check)
        elif self.transport is not None:
            self.transport.close()  # what aiosmtpd's own timeout does

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
