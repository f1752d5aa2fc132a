"""Fault injection and the sandbox's counters, driven over real HTTP."""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import SPEC, checked_client

from reconciler.sandbox import Sandbox, SandboxTenant
from reconciler.sandbox.conformance import shared_checker

EMAIL_CONFIG = "/api/v1/transports/email-config"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(tenants=30, seed=3, rate_limits=False) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def no_faults_left(sb: Sandbox) -> Iterator[None]:
    yield
    sb.faults.clear()


@pytest.fixture(scope="module")
def client(sb: Sandbox) -> Iterator[httpx.Client]:
    with checked_client(sb) as http:
        yield http


_next = itertools.count()


@pytest.fixture
def tenant(sb: Sandbox) -> SandboxTenant:
    return sb.tenants[next(_next)]


def admin(tenant: SandboxTenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.api_key}"}


def test_a_500_rate_of_one_fails_everything_and_changes_nothing(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    url = tenant.url + EMAIL_CONFIG
    sb.seed(tenant.name, sb.basic_auth_body(tenant.name))
    before = client.get(url, headers=admin(tenant)).json()
    mail_before = len(sb.mailbox)

    sb.faults.set(errors={500: 1.0}, tenant=tenant.name)
    changed = sb.basic_auth_body(tenant.name, senderName="Changed")
    responses = [
        client.put(url, json=changed, headers=admin(tenant)),
        client.delete(url, headers=admin(tenant)),
        client.post(url + "/actions/send-test-email", json={"recipient": "x@example.com"}),
    ]
    assert [r.status_code for r in responses] == [500, 500, 500]
    assert responses[0].json()["errors"][0]["code"] == "FAULT-500"

    sb.faults.clear(tenant.name)
    assert client.get(url, headers=admin(tenant)).json() == before
    assert len(sb.mailbox) == mail_before


def test_an_injected_429_carries_retry_after(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.faults.set(errors={429: 1.0}, tenant=tenant.name)
    response = client.get(tenant.url + EMAIL_CONFIG, headers=admin(tenant))
    assert (response.status_code, response.headers["Retry-After"]) == (429, "1")
    assert response.json()["errors"][0]["code"] == "RATELIMIT-1"


def test_a_reset_closes_the_connection_without_an_answer(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.faults.set(resets=1.0, tenant=tenant.name)
    with pytest.raises(httpx.TransportError):
        client.get(tenant.url + EMAIL_CONFIG, headers=admin(tenant))
    last = sb.request_log[-1]
    assert (last.tenant, last.status) == (tenant.name, 0)


def test_latency_delays_the_answer(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.faults.set(latency_ms=150, tenant=tenant.name)
    started = time.perf_counter()
    assert client.get(tenant.url + EMAIL_CONFIG, headers=admin(tenant)).status_code == 200
    assert time.perf_counter() - started >= 0.14  # timers may fire a hair early


def test_latency_counts_from_the_arrival_of_each_request(
    sb: Sandbox, tenant: SandboxTenant
) -> None:
    # Two requests pipelined on one connection arrive together; the second is
    # handled only after the first is answered, yet both are due `latency`
    # after their arrival. Counted from when the sandbox got round to it, the
    # second answer would come at twice the latency.
    sb.faults.set(latency_ms=300, tenant=tenant.name)
    host, port = sb.base_url.removeprefix("http://").split(":")
    path = tenant.url.removeprefix(sb.base_url) + EMAIL_CONFIG
    head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tenant.api_key}\r\n\r\n"

    async def two_pipelined() -> tuple[list[bytes], float]:
        reader, writer = await asyncio.open_connection(host, int(port))
        started = time.perf_counter()
        writer.write(head.encode() * 2)
        await writer.drain()
        statuses = []
        for _ in range(2):
            answer = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in answer.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            statuses.append(answer.split(b" ")[1])
        elapsed = time.perf_counter() - started
        writer.close()
        return statuses, elapsed

    statuses, elapsed = asyncio.run(two_pipelined())
    assert statuses == [b"200", b"200"]
    assert 0.29 <= elapsed < 0.5


def test_a_stall_outlasts_the_client_timeout(sb: Sandbox, tenant: SandboxTenant) -> None:
    sb.faults.set(stall_s=30, tenant=tenant.name)
    with httpx.Client(trust_env=False, timeout=0.3) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.get(tenant.url + EMAIL_CONFIG, headers=admin(tenant))


def test_a_short_stall_ends_in_a_gateway_timeout(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.faults.set(stall_s=0.1, tenant=tenant.name)
    response = client.put(
        tenant.url + EMAIL_CONFIG, json=sb.basic_auth_body(tenant.name), headers=admin(tenant)
    )
    assert response.status_code == 504
    assert sb.live_config(tenant.name) is None


def test_echo_body_puts_the_request_into_error_titles(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.faults.set(echo_body=True, tenant=tenant.name)
    body = sb.basic_auth_body(tenant.name, emailPassword="s3cr3t-marker", serverPort="x")
    response = client.put(tenant.url + EMAIL_CONFIG, json=body, headers=admin(tenant))
    assert response.status_code == 400
    assert "s3cr3t-marker" in response.json()["errors"][0]["title"]


def test_token_faults_spare_the_api(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.faults.set(token_errors={503: 1.0}, tenant=tenant.name)
    token = client.post(
        tenant.url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.oauth_client_id,
            "client_secret": tenant.oauth_client_secret,
        },
    )
    assert (token.status_code, token.headers["Retry-After"]) == (503, "1")
    assert client.get(tenant.url + EMAIL_CONFIG, headers=admin(tenant)).status_code == 200


def test_tenant_settings_replace_the_global_ones(client: httpx.Client, sb: Sandbox) -> None:
    spared, hit = sb.tenants[28], sb.tenants[29]
    sb.faults.set(errors={502: 1.0})
    sb.faults.set(tenant=spared.name)  # no faults at all for this one
    assert client.get(spared.url + EMAIL_CONFIG, headers=admin(spared)).status_code == 200
    assert client.get(hit.url + EMAIL_CONFIG, headers=admin(hit)).status_code == 502


async def _raw_get(host: str, port: int, path: str, key: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n"
    writer.write(request.encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    body = await reader.readexactly(length)
    writer.close()
    return int(head[9:12]), body


def test_a_thousand_slow_requests_wait_side_by_side(sb: Sandbox, tenant: SandboxTenant) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2600:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    sb.faults.set(latency_ms=50, tenant=tenant.name)
    sb.reset_stats()
    host, port = sb.base_url.removeprefix("http://").split(":")
    path = f"/t/{tenant.name}{EMAIL_CONFIG}"

    async def burst() -> list[tuple[int, bytes]]:
        return await asyncio.gather(
            *(_raw_get(host, int(port), path, tenant.api_key) for _ in range(1000))
        )

    started = time.perf_counter()
    answers = asyncio.run(burst())
    elapsed = time.perf_counter() - started

    checker = shared_checker(SPEC)
    for status, body in answers[:50]:
        checker.check("GET", path, status, body)
    assert {status for status, _ in answers} == {200}
    assert elapsed < 10  # one after another would take 50 s
    durations = sorted(e.duration_ms for e in sb.request_log if e.tenant == tenant.name)
    assert durations[len(durations) // 2] < 1000
    assert sb.stats.peak_in_flight >= 100


def test_peak_in_flight_counts_concurrent_requests(sb: Sandbox, tenant: SandboxTenant) -> None:
    sb.faults.set(latency_ms=100, tenant=tenant.name)
    sb.reset_stats()

    async def concurrently() -> list[int]:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
            calls = [http.get(tenant.url + EMAIL_CONFIG, headers=admin(tenant)) for _ in range(10)]
            return [r.status_code for r in await asyncio.gather(*calls)]

    assert asyncio.run(concurrently()) == [200] * 10
    stats = sb.stats
    assert stats.peak_in_flight > 1
    assert stats.peak_in_flight_of(tenant.name) > 1
    assert stats.tenants[tenant.name].in_flight == 0


def test_request_log_and_counters(client: httpx.Client, sb: Sandbox, tenant: SandboxTenant) -> None:
    sb.reset_stats()
    for _ in range(3):
        client.get(tenant.url + EMAIL_CONFIG, headers=admin(tenant))
    client.delete(tenant.url + EMAIL_CONFIG, headers=admin(tenant))

    stats = sb.stats
    assert (stats.requests, stats.by_status) == (4, {200: 3, 404: 1})
    assert stats.tenants[tenant.name].requests == 4
    log = sb.request_log
    assert [(e.method, e.status) for e in log] == [("GET", 200)] * 3 + [("DELETE", 404)]
    assert {(e.tenant, e.path) for e in log} == {(tenant.name, EMAIL_CONFIG)}
    sb.reset_stats()
    assert sb.request_log == [] and sb.stats.requests == 0
