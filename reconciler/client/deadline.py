"""Each tenant's step ends within its deadline, retries and waits included.

`timeout_s` bounds one attempt; retries multiply it, and a server's
`Retry-After` adds its own waits, so a tenant that answers 503 with
`Retry-After: 30` forever could hold a run for minutes. The engine runs each
step of a tenant (a read; a write with its verify-connection and read-back)
through `within`: when the step's `Deadline` is up it is cancelled and fails
with `DeadlineExceeded`, and the sender asks `retry_refusal` before it waits,
so that a `Retry-After` longer than what is left fails at once, saying why,
instead of sleeping into the deadline.

The step's deadline travels in a context variable: every call the step makes,
token requests included, sees it, whoever made the client.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeVar

from reconciler.errors import ApiError
from reconciler.values import valueclass

T = TypeVar("T")


@valueclass
class Deadline:
    """Seconds a step may take in all; `setting` names where that comes from."""

    seconds: float
    setting: str

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"Deadline: {self.setting} must be more than 0 s")


class DeadlineExceeded(ApiError):
    """A tenant's step did not end within its deadline (no response to blame)."""


@valueclass
class _Running:
    deadline: Deadline
    ends: float  # time.monotonic()


_CURRENT: ContextVar[_Running | None] = ContextVar("reconciler_deadline", default=None)


async def within(
    deadline: Deadline | None, tenant: str, what: str, work: Callable[[], Awaitable[T]]
) -> T:
    """`work()`, cancelled with DeadlineExceeded when `deadline` is up; `what`
    says what it does ("reading acme"); without a deadline, `work()` as it is."""
    if deadline is None:
        return await work()
    seconds = deadline.seconds
    token = _CURRENT.set(_Running(deadline, time.monotonic() + seconds))
    try:
        return await _bounded(seconds, work)
    except _Expired:
        raise DeadlineExceeded(
            f"{what} did not finish within the deadline of {seconds:g} s ({deadline.setting})",
            tenant=tenant,
        ) from None
    finally:
        _CURRENT.reset(token)


class _Expired(Exception):
    """The step's own time ran out (not a TimeoutError from inside it)."""


if sys.version_info >= (3, 11):
    from reconciler.client.expiry import expiring

    async def _bounded(seconds: float, work: Callable[[], Awaitable[T]]) -> T:
        scope = expiring(seconds)  # asyncio.timeout's behaviour, at less cost
        try:
            with scope:
                return await work()
        except TimeoutError:
            if scope.expired():
                raise _Expired from None
            raise

else:  # asyncio.timeout is new in 3.11

    async def _bounded(seconds: float, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await asyncio.wait_for(work(), seconds)
        except asyncio.TimeoutError:
            raise _Expired from None


def retry_refusal(wait: float) -> str | None:
    """Why a wait of `wait` seconds before the next attempt cannot be granted
    (it would end past the running step's deadline), or None when it can."""
    running = _CURRENT.get()
    if running is None:
        return None
    left = running.ends - time.monotonic()
    if wait <= left:
        return None
    deadline = running.deadline
    return (
        f"more than the {max(left, 0.0):.0f} s left of this tenant's deadline of "
        f"{deadline.seconds:g} s ({deadline.setting})"
    )
