"""`expiry.expiring` behaves as asyncio.timeout: each case runs with both."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")


@contextlib.asynccontextmanager
async def with_expiring(seconds: float) -> AsyncIterator[Any]:
    from reconciler.client.expiry import expiring

    with expiring(seconds) as scope:
        yield scope


@contextlib.asynccontextmanager
async def with_asyncio(seconds: float) -> AsyncIterator[Any]:
    async with asyncio.timeout(seconds) as scope:
        yield scope


KINDS = [with_expiring, with_asyncio]
Limit = Callable[[float], Any]


@pytest.mark.parametrize("limit", KINDS)
def test_a_step_past_its_limit_is_a_timeout_and_its_task_is_not_left_cancelled(limit: Limit):
    async def main() -> tuple[bool, int, str]:
        try:
            async with limit(0.05) as scope:
                await asyncio.sleep(5)
        except TimeoutError:
            pass
        task = asyncio.current_task()
        assert task is not None
        await asyncio.sleep(0.01)  # the task runs on: nothing cancels it again
        return scope.expired(), task.cancelling(), "went on"

    assert asyncio.run(main()) == (True, 0, "went on")


@pytest.mark.parametrize("limit", KINDS)
def test_a_step_within_its_limit_is_never_cancelled_afterwards(limit: Limit):
    async def main() -> tuple[int, bool]:
        async with limit(0.05) as scope:
            value = 42
        await asyncio.sleep(0.15)  # past the limit the scope had
        return value, scope.expired()

    assert asyncio.run(main()) == (42, False)


@pytest.mark.parametrize("limit", KINDS)
def test_an_inner_limit_ends_the_inner_step_only(limit: Limit):
    async def main() -> tuple[str, bool, bool]:
        async with limit(5) as outer:
            try:
                async with limit(0.05) as inner:
                    await asyncio.sleep(5)
            except TimeoutError:
                outcome = "inner timed out"
            await asyncio.sleep(0.01)
        return outcome, inner.expired(), outer.expired()

    assert asyncio.run(main()) == ("inner timed out", True, False)


@pytest.mark.parametrize("limit", KINDS)
def test_an_outer_limit_ends_the_inner_step_as_the_outer_one(limit: Limit):
    async def main() -> tuple[str, bool, bool]:
        inner = None
        try:
            async with limit(0.05) as outer, limit(5) as inner:
                await asyncio.sleep(5)
        except TimeoutError:
            outcome = "timed out"
        assert inner is not None
        return outcome, inner.expired(), outer.expired()

    assert asyncio.run(main()) == ("timed out", False, True)


@pytest.mark.parametrize("limit", KINDS)
def test_a_cancellation_from_outside_stays_a_cancellation(limit: Limit):
    async def step() -> None:
        async with limit(0.05):
            await asyncio.sleep(5)

    async def main() -> str:
        task = asyncio.ensure_future(step())
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    assert asyncio.run(main()) == "cancelled"


@pytest.mark.parametrize("limit", KINDS)
def test_a_cancellation_that_meets_the_expiry_is_not_taken_for_it(limit: Limit):
    """Cancelled from outside in the same turn as the time runs out: the
    cancellation wins (asyncio.timeout's rule: it counts the cancel requests)."""

    async def step() -> None:
        loop = asyncio.get_running_loop()
        async with limit(0.05) as scope:
            when = scope.when() if callable(scope.when) else scope.when
            task = asyncio.current_task()
            assert task is not None
            loop.call_at(when, task.cancel)  # due with the scope's own timer
            await asyncio.sleep(5)

    async def main() -> str:
        try:
            await asyncio.ensure_future(step())
        except asyncio.CancelledError:
            return "cancelled"
        except TimeoutError:
            return "timed out"
        return "finished"

    assert asyncio.run(main()) == "cancelled"


@pytest.mark.parametrize("limit", KINDS)
def test_steps_of_many_tasks_end_at_their_own_limits(limit: Limit):
    """A long limit entered first does not delay a short one entered later."""

    async def step(seconds: float, ended: list[tuple[float, str]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with limit(seconds):
                await asyncio.sleep(10)
        except TimeoutError:
            ended.append((seconds, "timed out"))
        assert loop.time() > 0

    async def main() -> tuple[list[tuple[float, str]], float]:
        ended: list[tuple[float, str]] = []
        loop = asyncio.get_running_loop()
        started = loop.time()
        long = asyncio.ensure_future(step(5, ended))
        await asyncio.sleep(0)
        await asyncio.gather(*(step(s, ended) for s in (0.15, 0.05, 0.1)))
        elapsed = loop.time() - started
        long.cancel()
        await asyncio.gather(long, return_exceptions=True)
        return ended, elapsed

    ended, elapsed = asyncio.run(main())
    assert ended == [(0.05, "timed out"), (0.1, "timed out"), (0.15, "timed out")]
    assert elapsed < 1.0  # the 5 s limit armed first held none of them back


def test_a_scope_outside_a_task_is_refused():
    from reconciler.client.expiry import expiring

    async def main() -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        loop.call_soon(lambda: future.set_result(_scope_in_callback()))
        await future

    def _scope_in_callback() -> None:
        with pytest.raises(RuntimeError, match="inside a task"):
            expiring(1)

    asyncio.run(main())


def test_each_loop_has_its_own_table():
    """Loops one after the other (asyncio.run each time) and a scope left armed
    in a closed loop do not disturb the next loop's scopes."""

    async def main(seconds: float) -> str:
        try:
            async with with_expiring(seconds):
                await asyncio.sleep(10)
        except TimeoutError:
            return "timed out"
        return "finished"

    assert [asyncio.run(main(s)) for s in (0.05, 0.02, 0.03)] == ["timed out"] * 3


def test_a_scope_counts_from_its_making_but_acts_only_once_entered():
    """As asyncio.timeout: the time runs from `expiring()`, and a scope made but
    never entered cancels nothing."""
    from reconciler.client.expiry import expiring

    async def main() -> tuple[str, bool]:
        unused = expiring(0.01)
        await asyncio.sleep(0.05)  # past its limit: not entered, so no cancel
        scope = expiring(0.05)
        try:
            with scope:
                await asyncio.sleep(5)
        except TimeoutError:
            pass
        with pytest.raises(RuntimeError, match="entered once"), scope:
            pass
        return "ran on", unused.expired()

    assert asyncio.run(main()) == ("ran on", False)
