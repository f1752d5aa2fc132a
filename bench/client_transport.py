"""What the HTTP transport costs the client: CPU per GET, and wall time at 50 ms latency.

    .venv/bin/python bench/client_transport.py [--repeat 5] [--tenants 100]
        [--json bench/results/client_transport.json]

Each transport drives the real `ApiSession` (`get_email_config`, no pacing, no
retries) against the sandbox in its own process (`python -m reconciler.sandbox
serve --no-rate-limit`), one sandbox without latency and one with
`--latency-ms 50`:

- CPU: this process's CPU time (user + sys) for 6,000 GETs at zero latency,
  64 in flight, per GET;
- wall: 1,000 GETs at 50 ms latency with 64 in flight (ideal: 16 x 50 ms = 0.80 s).

Transports compared, interleaved, median of `--repeat` runs:

- `aiohttp`: the client's default, `reconciler.client.transport.Transport`, one client;
- `httpx`: httpx's own transport (httpcore), one client of 64 connections;
- `httpx-pools-4`: httpx's own transport split into 16 pools of 4 connections,
  a tenant sticking to the least loaded pool when first seen (what the client
  did before it moved to aiohttp, reimplemented here as a transport).

Every tenant first gets a BasicAuth configuration, so the GET bodies have
their real size. A warm-up round (one GET per tenant) precedes each timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sandbox_throughput import configure_all, start_sandbox

from reconciler.client import ApiKeyCredentials, ApiSession, ClientOptions, tls
from reconciler.secrets import Secret

ROOT = Path(__file__).resolve().parent.parent
IN_FLIGHT = 64


class PoolsTransport(httpx.AsyncBaseTransport):
    """httpx's own transport split into small pools; a tenant (its path prefix
    /t/NAME) sticks to the pool with the fewest requests in flight when first seen."""

    def __init__(self, pools: int, per_pool: int) -> None:
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        context = tls.shared()
        self._pools = [
            httpx.AsyncHTTPTransport(verify=context, limits=limits) for _ in range(pools)
        ]
        self._in_flight = [0] * pools
        self._tenants = [0] * pools
        self._assigned: dict[str, int] = {}

    def _index(self, request: httpx.Request) -> int:
        tenant = request.url.path.split("/", 3)[2]
        index = self._assigned.get(tenant)
        if index is None:
            pools = range(len(self._pools))
            index = min(pools, key=lambda i: (self._in_flight[i], self._tenants[i]))
            self._assigned[tenant] = index
            self._tenants[index] += 1
        return index

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self._index(request)
        self._in_flight[index] += 1
        try:
            return await self._pools[index].handle_async_request(request)
        finally:
            self._in_flight[index] -= 1

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def httpx_one() -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    return httpx.AsyncHTTPTransport(verify=tls.shared(), limits=limits)


TRANSPORTS: dict[str, Callable[[], httpx.AsyncBaseTransport | None]] = {
    "aiohttp": lambda: None,  # the client's default
    "httpx": httpx_one,
    "httpx-pools-4": lambda: PoolsTransport(IN_FLIGHT // 4, 4),
}


async def drive(fleet: dict[str, Any], transport: str, gets: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `gets` GETs, IN_FLIGHT at a time, after a warm-up."""
    options = ClientOptions(
        connections=IN_FLIGHT, pace=False, max_retries=0, transport=TRANSPORTS[transport]()
    )
    base = fleet["base_url"]
    async with ApiSession(options) as session:
        tenants = [
            session.tenant(
                t["name"], f"{base}/t/{t['name']}", ApiKeyCredentials(Secret(t["api_key"]))
            )
            for t in fleet["tenants"]
        ]

        async def run(count: int) -> None:
            queue = iter(range(count))

            async def worker() -> None:
                for i in queue:
                    await tenants[i % len(tenants)].get_email_config()

            await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))

        await run(len(tenants))  # warm-up: connections, TLS context, imports
        wall, cpu = time.perf_counter(), time.process_time()
        await run(gets)
        return time.perf_counter() - wall, time.process_time() - cpu


def measure(fleet: dict[str, Any], gets: int, repeat: int) -> dict[str, list[float]]:
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in TRANSPORTS}
    for _ in range(repeat):
        for name in TRANSPORTS:  # interleaved, so drift in the machine hits all alike
            runs[name].append(asyncio.run(drive(fleet, name, gets)))
    return {
        name: [statistics.median(w for w, _ in r), statistics.median(c for _, c in r)]
        for name, r in runs.items()
    }


def with_sandbox(tenants: int, latency_ms: float, work: Callable[[dict[str, Any]], Any]) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        ready_file = Path(tmp) / "ready.json"
        process = start_sandbox(tenants, ready_file, latency_ms)
        try:
            fleet = json.loads(ready_file.read_text())
            host, port = fleet["base_url"].removeprefix("http://").rsplit(":", 1)
            asyncio.run(configure_all(fleet, host, int(port)))
            return work(fleet)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cpu-gets", type=int, default=6000)
    parser.add_argument("--latency-gets", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/client_transport.json")
    args = parser.parse_args()
    cpu = with_sandbox(args.tenants, 0, lambda f: measure(f, args.cpu_gets, args.repeat))
    wall = with_sandbox(args.tenants, 50, lambda f: measure(f, args.latency_gets, args.repeat))
    ideal = -(-args.latency_gets // IN_FLIGHT) * 0.05
    lines = [
        f"| transport | CPU per GET, {args.cpu_gets:,} GETs at 0 ms (ms) "
        f"| wall, {args.latency_gets:,} GETs at 50 ms, {IN_FLIGHT} in flight (s) |",
        "|---|---:|---:|",
    ]
    results = []
    for name in TRANSPORTS:
        per_get_ms = cpu[name][1] / args.cpu_gets * 1000
        lines.append(f"| {name} | {per_get_ms:.2f} | {wall[name][0]:.2f} |")
        results.append(
            {
                "transport": name,
                "cpu_ms_per_get": round(per_get_ms, 3),
                "wall_s_at_50ms": round(wall[name][0], 3),
            }
        )
    print("\n".join(lines))
    print(f"ideal wall: {ideal:.2f} s; median of {args.repeat} runs each")
    document = {
        "benchmark": "client_transport",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "tenants": args.tenants,
        "repeat": args.repeat,
        "ideal_wall_s": ideal,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
