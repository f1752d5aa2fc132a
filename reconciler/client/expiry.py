"""Timeouts for many steps at once, at the cost of a table entry each (3.11+).

`asyncio.timeout` puts a timer on the loop's heap for every use, whose entries
compare in Python, and wraps it in an async context manager: a tenant's read
paid for two of them, its deadline and its request's (what that cost, and what
this one costs: bench/NOTES.md, "Timeouts by the table").
`expiring(seconds)` keeps the running scopes of a loop in one table, with one
timer armed for the earliest of them; what an expiry does is what
`asyncio.timeout` does: the scope's task is cancelled, and the scope turns
that cancellation into TimeoutError as it is left, unless the task was also
cancelled for another reason. A scope is left by `with`, never awaited:

    with expiring(30.0) as scope:
        return await work()
    # TimeoutError when the 30 s ran out; scope.expired() says it was this one
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType

_CREATED, _ENTERED, _EXPIRING, _EXPIRED, _LEFT = range(5)


class Scope:
    """One step's time limit (`expiring`)."""

    __slots__ = ("_cancelling", "_loop", "_state", "_task", "_watch", "when")

    def __init__(
        self,
        watch: _Watch,
        loop: asyncio.AbstractEventLoop,
        when: float,
        task: asyncio.Task[object],
    ) -> None:
        self.when = when  # loop.time() at which the step is cancelled
        self._watch = watch
        self._loop = loop
        self._task = task
        self._cancelling = 0
        self._state = _CREATED

    def expired(self) -> bool:
        """Whether the time ran out (the step was cancelled by this scope)."""
        return self._state in (_EXPIRING, _EXPIRED)

    def __enter__(self) -> Scope:
        if self._state != _CREATED:
            raise RuntimeError("a scope of expiring() is entered once")
        self._cancelling = self._task.cancelling()  # type: ignore[attr-defined]  # 3.11+
        self._state = _ENTERED
        self._watch.enter(self._loop, self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._state == _EXPIRING:
            self._state = _EXPIRED
            # As asyncio.timeout: no other cancellation asked for, so this is ours.
            uncancelled = self._task.uncancel()  # type: ignore[attr-defined]  # 3.11+
            if uncancelled <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc
            return
        self._state = _LEFT
        self._watch.leave(self)

    def _expire(self) -> None:
        self._state = _EXPIRING
        self._task.cancel()


class _Watch:
    """The scopes of one loop, and the timer for the earliest of them."""

    __slots__ = ("__weakref__", "_armed", "_handle", "_scopes")

    def __init__(self) -> None:
        self._scopes: dict[Scope, None] = {}  # in the order they were entered
        self._armed: float | None = None  # when the timer fires
        self._handle: asyncio.TimerHandle | None = None

    def enter(self, loop: asyncio.AbstractEventLoop, scope: Scope) -> None:
        self._scopes[scope] = None
        if self._armed is None or scope.when < self._armed:
            self._arm(loop, scope.when)

    def leave(self, scope: Scope) -> None:
        # The timer stays armed: cancelling it, and arming one for the next
        # scope, would cost what the table saves. It finds nothing due, then.
        del self._scopes[scope]

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = when
        # The loop is passed, not kept: the table lives as long as its loop.
        self._handle = loop.call_at(when, self._fire, loop, when)

    def _fire(self, loop: asyncio.AbstractEventLoop, armed: float) -> None:
        self._handle = self._armed = None
        # The loop may run a timer a clock tick early: what it was armed for is due.
        now = max(loop.time(), armed)
        due = [scope for scope in self._scopes if scope.when <= now]
        for scope in due:
            del self._scopes[scope]
            scope._expire()
        if self._scopes:
            self._arm(loop, min(scope.when for scope in self._scopes))


_WATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch] = weakref.WeakKeyDictionary()
# The last loop's table, looked up without the weak dictionary's Python code.
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], _Watch] | None = None


def expiring(seconds: float) -> Scope:
    """A scope that cancels the current task after `seconds` (see the module)."""
    global _last
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    if task is None:
        raise RuntimeError("expiring() is used inside a task")
    last = _last
    if last is not None and last[0]() is loop:
        watch = last[1]
    else:
        watch = _WATCHES.get(loop) or _WATCHES.setdefault(loop, _Watch())
        _last = (weakref.ref(loop), watch)
    return Scope(watch, loop, loop.time() + seconds, task)
