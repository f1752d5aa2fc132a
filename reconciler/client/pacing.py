"""Per-tenant pacing: stay inside the API's rate-limit tiers instead of hitting 429s."""

from __future__ import annotations

import asyncio
from collections import deque

from reconciler.client.options import Clock, Sleep

WINDOW_S = 60.0


class SlidingWindow:
    """At most `limit` acquisitions in any rolling `window_s` seconds.

    Waiters queue on a (FIFO) lock, so only the head of the queue sleeps and
    they are served in arrival order. Waiting happens in the caller's coroutine
    only: other tenants, with their own windows, carry on.
    """

    __slots__ = ("_clock", "_limit", "_lock", "_sleep", "_stamps", "_window_s")

    def __init__(self, limit: int, clock: Clock, sleep: Sleep, window_s: float = WINDOW_S) -> None:
        self._limit = limit
        self._window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Take a slot, waiting for one if needed; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                now = self._clock()
                while self._stamps and self._stamps[0] <= now - self._window_s:
                    self._stamps.popleft()
                if len(self._stamps) < self._limit:
                    self._stamps.append(now)
                    return waited
                delay = self._stamps[0] + self._window_s - now
                waited += delay
                await self._sleep(delay)
