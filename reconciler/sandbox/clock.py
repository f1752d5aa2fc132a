"""The sandbox's notion of time, which tests can move forward.

Token expiry, rate-limit windows and modification times all read this clock,
so a test can make a six-hour token expire or a rate-limit window slide with
`Sandbox.advance_time(seconds)` instead of sleeping.
"""

from __future__ import annotations

import datetime
import threading
import time


class Clock:
    """Wall-clock and monotonic time plus an offset that only grows."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        """Move the sandbox's time forward by `seconds` (never backwards)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds

    def now(self) -> float:
        """Seconds since the epoch, as the sandbox sees them."""
        return time.time() + self._offset

    def monotonic(self) -> float:
        """A monotonic reading for durations and windows."""
        return time.monotonic() + self._offset


def iso_timestamp(epoch_seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, as the API writes it."""
    moment = datetime.datetime.fromtimestamp(epoch_seconds, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
