"""An asyncio event loop in a background thread, for in-process servers.

Tests and the demo are synchronous code; the sandbox's servers are asyncio.
`BackgroundLoop` runs one loop in a daemon thread: `start(setup)` returns once
`setup()` has run on it (the listeners are bound and serving), or raises what
went wrong; `stop(teardown)` runs `teardown()`, cancels whatever is still
pending (stalled requests, checks in progress) and ends the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

TIMEOUT_S = 30.0


class BackgroundLoop:
    """One event loop, one daemon thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, setup: Callable[[], Awaitable[None]]) -> None:
        """Start the thread and run `setup()` on the loop; raise if it fails."""
        if self._thread is not None:
            raise RuntimeError(f"{self._name} is already running")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(setup())
            except BaseException as exc:  # handed to the starting thread below
                failure.append(exc)
                return
            finally:
                ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        if not ready.wait(TIMEOUT_S) or failure:
            self.stop(None)
            cause = failure[0] if failure else None
            raise RuntimeError(f"{self._name} did not start") from cause

    def stop(self, teardown: Callable[[], Awaitable[None]] | None) -> None:
        """Run `teardown()`, cancel every pending task, end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive() and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(_finish(teardown), loop)
            future.result(TIMEOUT_S)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT_S)
        loop.close()
        self._loop = self._thread = None


async def _finish(teardown: Callable[[], Awaitable[None]] | None) -> None:
    if teardown is not None:
        await teardown()
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
