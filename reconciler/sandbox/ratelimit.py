"""Qlik Cloud's rate limits: per tenant, per credential, per tier, over 60 s.

Tier 1 (GET) allows 1000 requests a minute, Tier 2 (PUT, PATCH, DELETE, the
three actions and `/oauth/token`) 100. The window slides: a request is
allowed when fewer than `limit` requests were allowed in the last 60 seconds.
Refused requests do not count, so a client that waits `Retry-After` seconds
gets through. Limits can be changed for all tenants or one, and switched off
altogether (benchmarks measure the server, not the limiter).

Only the event loop thread calls `hit`; the lock is for the settings, which
tests change from their own thread.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from reconciler.sandbox.clock import Clock

WINDOW_S = 60.0


class RateLimiter:
    """Sliding-window counters keyed by (tenant, credential, tier)."""

    def __init__(self, clock: Clock, *, tier1: int = 1000, tier2: int = 100) -> None:
        self.enabled = True
        self._clock = clock
        self._lock = threading.Lock()
        self._defaults = {"1": tier1, "2": tier2}
        self._per_tenant: dict[str, dict[str, int]] = {}
        self._windows: dict[tuple[str, str, str], deque[float]] = {}

    def set_limits(
        self, *, tier1: int | None = None, tier2: int | None = None, tenant: str | None = None
    ) -> None:
        """Change the per-minute limits, for every tenant or for one."""
        for value in (tier1, tier2):
            if value is not None and value < 1:
                raise ValueError("a rate limit must be at least 1 request per minute")
        with self._lock:
            target = self._defaults if tenant is None else self._per_tenant.setdefault(tenant, {})
            if tier1 is not None:
                target["1"] = tier1
            if tier2 is not None:
                target["2"] = tier2

    def limit(self, tenant: str, tier: str) -> int:
        """The limit in force for a tenant and tier."""
        with self._lock:
            override = self._per_tenant.get(tenant)
            if override is not None and tier in override:
                return override[tier]
            return self._defaults[tier]

    def hit(self, tenant: str, credential: str, tier: str) -> int | None:
        """Count one request: None when allowed, else the seconds to wait."""
        if not self.enabled:
            return None
        limit = self.limit(tenant, tier)
        now = self._clock.monotonic()
        window = self._windows.setdefault((tenant, credential, tier), deque())
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        if len(window) >= limit:
            # The oldest allowed request leaves the window first.
            return max(1, math.ceil(window[0] + WINDOW_S - now))
        window.append(now)
        return None

    def reset(self) -> None:
        """Forget every request counted so far (the settings stay)."""
        self._windows.clear()
