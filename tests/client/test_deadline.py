"""`deadline`: a tenant's step is cut off when its deadline is up, and a
Retry-After longer than what is left fails at once, saying why."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from reconciler.client import ApiKeyCredentials, ApiSession, ClientOptions
from reconciler.client.deadline import Deadline, DeadlineExceeded, retry_refusal, within
from reconciler.errors import ApiError
from reconciler.secrets import Secret

BASE = "https://acme.eu.qlikcloud.com"


def session_answering(handler: object) -> ApiSession:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    return ApiSession(ClientOptions(transport=transport, pace=False))


async def read_within(session: ApiSession, deadline: Deadline) -> object:
    async with session:
        client = session.tenant("acme", BASE, ApiKeyCredentials(Secret("k")))
        return await within(deadline, "acme", "reading acme", client.read_live)


def test_a_retry_after_longer_than_what_is_left_fails_at_once() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, headers={"Retry-After": "30"}, json={"errors": []})

    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        asyncio.run(read_within(session_answering(handler), Deadline(5, "settings.deadline.read")))
    assert time.monotonic() - started < 1 and len(seen) == 1
    assert str(caught.value).startswith("GET email-config on acme was refused (503) with ")
    assert (
        "Retry-After 30 s, more than the 5 s left of this tenant's deadline of 5 s "
        "(settings.deadline.read); try again later"
    ) in str(caught.value)


def test_a_retry_after_within_what_is_left_is_waited_for() -> None:
    answers = [
        httpx.Response(503, headers={"Retry-After": "0.2"}),
        httpx.Response(200, json={"isValid": False, "passwordExists": False}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    live = asyncio.run(read_within(session_answering(handler), Deadline(5, "x")))
    assert not answers and live is not None


def test_a_step_still_running_at_its_deadline_is_cut_off() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)  # well within the 30 s timeout of one attempt
        return httpx.Response(404)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        asyncio.run(
            read_within(session_answering(handler), Deadline(0.3, "settings.deadline.read"))
        )
    assert time.monotonic() - started < 2
    assert str(caught.value) == (
        "reading acme did not finish within the deadline of 0.3 s (settings.deadline.read)"
    )
    assert caught.value.tenant == "acme" and caught.value.status is None


def test_without_a_running_step_no_wait_is_refused() -> None:
    assert retry_refusal(10_000) is None

    async def inside() -> str | None:
        return retry_refusal(10_000)

    refusal = asyncio.run(within(Deadline(60, "s"), "acme", "x", inside))
    assert refusal is not None and "deadline of 60 s (s)" in refusal
    assert retry_refusal(10_000) is None  # the step's deadline ended with it


@pytest.mark.parametrize("seconds", [0, -1])
def test_a_deadline_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="more than 0"):
        Deadline(seconds, "settings.deadline.read")
