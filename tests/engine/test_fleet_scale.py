"""Fleet-scale behaviour, checked by counting, never by timing: bounded concurrency
that really overlaps, one OAuth token per tenant for a whole command, pacing
that keeps a low-limit tenant free of 429s, and a 429 that delays only its own
tenant. The timings are in `bench/run.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import run_cli, run_cli_process

from reconciler.client import ApiKeyCredentials, ApiSession, ClientOptions
from reconciler.engine import Engine, select
from reconciler.engine.fleet import run_bounded
from reconciler.model import ReadFailure
from reconciler.sandbox import Sandbox
from reconciler.secrets import ResolvePolicy, Secret, SecretResolver


@pytest.fixture(scope="module")
def fleet() -> Iterator[Sandbox]:
    """Twelve tenants, shared by the tests that do not change their state."""
    with Sandbox(tenants=12, seed=11) as sb:
        yield sb


def resolver_for(root: Path) -> SecretResolver:
    return SecretResolver(ResolvePolicy(base_dir=root))


def load(root: Path) -> Any:
    from reconciler.config import load_config

    return load_config(root)


class SandboxTime:
    """A clock and a sleep for the client that move the sandbox's clock too: pacing
    and Retry-After waits take no real time, and the sandbox's windows move with them."""

    def __init__(self, sb: Sandbox, real_fraction: float = 0.0) -> None:
        self.sb, self.now, self.slept = sb, 0.0, 0.0
        self.real_fraction = real_fraction

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        self.sb.advance_time(seconds)
        await asyncio.sleep(seconds * self.real_fraction)


# --- concurrency ---------------------------------------------------------------------------


def test_run_bounded_keeps_order_and_never_exceeds_its_bound() -> None:
    in_flight, peak = 0, 0

    async def work(item: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (item % 3))
        in_flight -= 1
        return item * 2

    results = asyncio.run(run_bounded(list(range(50)), work, concurrency=7))
    assert results == [i * 2 for i in range(50)]
    assert peak == 7


def test_requests_of_different_tenants_overlap_up_to_the_concurrency(tmp_path: Path) -> None:
    with Sandbox(tenants=40, seed=3, latency_ms=20) as sb:
        desired = load(sb.write_config(tmp_path / "config"))

        def read(concurrency: int) -> None:
            selection = select(desired, concurrency=concurrency)
            live = Engine(selection, resolver_for(desired.root)).read()
            assert not any(isinstance(state, ReadFailure) for state in live.values())

        read(10)
        assert 8 <= sb.stats.peak_in_flight <= 10  # overlapping, and bounded
        sb.reset_stats()
        read(1)
        assert sb.stats.peak_in_flight == 1


def test_plan_concurrency_option_bounds_the_requests_in_flight(tmp_path: Path) -> None:
    with Sandbox(tenants=16, seed=4, latency_ms=20) as sb:
        root = sb.write_config(tmp_path / "config")
        result = run_cli("plan", str(root), "--concurrency", "4")
        assert result.code == 0, result
        assert 3 <= sb.stats.peak_in_flight <= 4


def test_an_oauth_fleet_fetches_one_token_per_tenant(tmp_path: Path) -> None:
    # drift --verify reads every tenant, then verifies each one: one session,
    # so one token per tenant serves both.
    with Sandbox(tenants=50, seed=5) as sb:
        desired = load(sb.write_config(tmp_path / "config", auth="oauth"))
        for tenant in sb.tenants:
            sb.seed(tenant.name, sb.basic_auth_body(tenant.name))
        sb.reset_stats()
        engine = Engine(select(desired, concurrency=16), resolver_for(desired.root))
        report = engine.drift(verify=True)
        assert not any(t.error for t in report.tenants)
        tokens = [e for e in sb.request_log if e.path == "/oauth/token"]
        verifies = [e for e in sb.request_log if e.path.endswith("/verify-connection")]
        assert len(tokens) == len(verifies) == 50
        assert {e.tenant for e in tokens} == {t.name for t in sb.tenants}


@pytest.mark.parametrize("command", [("apply", "--auto-approve"), ("drift", "--verify")])
def test_a_command_that_reads_then_writes_fetches_each_token_once(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # apply reads (plan) then writes, drift --verify reads then verifies: one
    # session for the whole command, so one token per tenant. Run as a user runs it.
    with Sandbox(tenants=30, seed=6) as sb:
        root = sb.write_config(tmp_path / "config", auth="oauth")
        if command[0] == "drift":
            for tenant in sb.tenants:
                sb.seed(tenant.name, sb.basic_auth_body(tenant.name))
        sb.reset_stats()
        done = run_cli_process(command[0], str(root), command[1])
        assert done.code == 0, done
        tokens = [e for e in sb.request_log if e.path == "/oauth/token"]
        writes = [
            e for e in sb.request_log if e.method in ("PUT", "POST") and e.path != "/oauth/token"
        ]
        assert len(writes) >= 30  # the second step did work for every tenant
        assert sorted(e.tenant for e in tokens) == sorted(t.name for t in sb.tenants)


# --- pacing and 429s -----------------------------------------------------------------------


def _tier2_calls(sb: Sandbox, name: str, calls: int, options: ClientOptions) -> ApiSession:
    tenant = sb.tenant(name)

    async def work() -> ApiSession:
        async with ApiSession(options) as session:
            client = session.tenant(name, tenant.url, ApiKeyCredentials(Secret(tenant.api_key)))
            for _ in range(calls):
                await client.delete_email_config()  # Tier 2, no SMTP: cheap on the sandbox
        return session

    return asyncio.run(work())


def test_pacing_keeps_a_low_limit_tenant_free_of_429s(fleet: Sandbox) -> None:
    fleet.reset_stats()
    fleet.reset_rate_limits()
    fleet.set_rate_limit(tier2=5, tenant="tenant-001")
    try:
        time_ = SandboxTime(fleet)
        options = ClientOptions(tier2_per_minute=5, clock=time_.clock, sleep=time_.sleep)
        session = _tier2_calls(fleet, "tenant-001", 40, options)
    finally:
        fleet.set_rate_limit(tier2=100, tenant="tenant-001")
        fleet.reset_rate_limits()
    assert fleet.stats.responses_429 == 0 and session.stats.responses_429 == 0
    answered = fleet.stats.tenants["tenant-001"].by_status
    assert 429 not in answered and sum(answered.values()) == 40  # a 204, then 404s
    assert time_.slept >= 7 * 60  # 40 calls at 5 a minute: the client waited, not the API


def test_the_default_pacing_stays_under_qlik_limits(fleet: Sandbox) -> None:
    fleet.reset_stats()
    fleet.reset_rate_limits()
    time_ = SandboxTime(fleet)
    # the client's defaults (900 / 90 a minute) against Qlik's (1000 / 100)
    options = ClientOptions(clock=time_.clock, sleep=time_.sleep)
    _tier2_calls(fleet, "tenant-002", 250, options)
    fleet.reset_rate_limits()
    assert fleet.stats.responses_429 == 0
    assert time_.slept > 0  # 250 Tier 2 calls do not fit in a minute


def test_without_pacing_the_same_run_meets_429s_and_honours_retry_after(
    fleet: Sandbox,
) -> None:
    fleet.reset_stats()
    fleet.reset_rate_limits()
    fleet.set_rate_limit(tier2=5, tenant="tenant-003")
    try:
        time_ = SandboxTime(fleet)
        options = ClientOptions(pace=False, clock=time_.clock, sleep=time_.sleep)
        session = _tier2_calls(fleet, "tenant-003", 12, options)
    finally:
        fleet.set_rate_limit(tier2=100, tenant="tenant-003")
        fleet.reset_rate_limits()
    assert session.stats.responses_429 == fleet.stats.responses_429 > 0
    answered = fleet.stats.tenants["tenant-003"].by_status
    assert sum(n for status, n in answered.items() if status != 429) == 12  # every call got through


def test_a_429_on_one_tenant_does_not_delay_the_others(fleet: Sandbox) -> None:
    fleet.reset_stats()
    fleet.reset_rate_limits()
    fleet.set_rate_limit(tier1=1, tenant="tenant-004")
    # Retry-After 60 s takes 0.3 s of real time here, long enough to be seen
    time_ = SandboxTime(fleet, real_fraction=0.005)
    finished: dict[str, float] = {}

    async def work() -> None:
        async with ApiSession(ClientOptions(clock=time_.clock, sleep=time_.sleep)) as session:
            started = time.monotonic()

            async def read(name: str, times: int) -> None:
                tenant = fleet.tenant(name)
                client = session.tenant(name, tenant.url, ApiKeyCredentials(Secret(tenant.api_key)))
                for _ in range(times):
                    await client.get_email_config()
                finished[name] = time.monotonic() - started

            others = [f"tenant-{i:03d}" for i in range(5, 13)]
            await asyncio.gather(read("tenant-004", 2), *(read(name, 10) for name in others))

    try:
        asyncio.run(work())
    finally:
        fleet.set_rate_limit(tier1=1000, tenant="tenant-004")
        fleet.reset_rate_limits()
    assert fleet.stats.responses_429 == 1
    assert fleet.stats.tenants["tenant-004"].by_status == {200: 2, 429: 1}
    slowest_other = max(t for name, t in finished.items() if name != "tenant-004")
    assert finished["tenant-004"] >= 0.25
    assert slowest_other < finished["tenant-004"] - 0.15


def test_the_sandbox_stats_endpoint_counts_and_resets(fleet: Sandbox) -> None:
    fleet.reset_stats()
    tenant = fleet.tenant("tenant-005")
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    with httpx.Client(base_url=fleet.base_url) as http:
        assert http.get(f"/t/{tenant.name}/api/v1/transports/email-config", headers=headers)
        stats = http.get("/_sandbox/stats").json()
        assert stats["requests"] == 1 and stats["responses429"] == 0
        assert stats["routes"]["GET /api/v1/transports/email-config"]["count"] == 1
        assert http.post("/_sandbox/reset").status_code == 204
        assert http.get("/_sandbox/stats").json()["requests"] == 0
        assert http.get("/_sandbox/nothing").status_code == 404
