"""How the engine runs a step: one event loop, and the step's result handed back
without asyncio formatting it."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from reconciler.engine import Engine


class Loud:
    """A result that records every time something formats it."""

    def __init__(self) -> None:
        self.formatted = 0

    def __repr__(self) -> str:
        self.formatted += 1
        return "Loud()"


@pytest.fixture
def engine():
    return Engine.load(Path(__file__).parent.parent / "data" / "config" / "valid-minimal")


def test_the_result_of_a_step_is_returned_without_being_formatted(engine):
    # asyncio.run, on its way out, formats its main task (result included) while
    # it puts back the SIGINT handler: for a plan of thousands of tenants that
    # cost tens of milliseconds, so the result must not be the task's.
    assert threading.current_thread() is threading.main_thread()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    result = Loud()

    async def step(session: object) -> Loud:
        return result

    assert engine._run(step) is result
    assert result.formatted == 0
