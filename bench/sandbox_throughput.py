"""How many GETs a second the sandbox serves, at 1 to 128 keep-alive connections.

    .venv/bin/python bench/sandbox_throughput.py [--tenants 100] [--duration 3]
        [--connections 1,16,64,128] [--json bench/results/sandbox_throughput.json]

The sandbox runs in its own process (`python -m reconciler.sandbox serve
--no-rate-limit`); this process is the client: raw asyncio streams, one
request in flight per connection, each connection cycling through the
tenants with their own API keys. Every tenant first gets a BasicAuth
configuration (a real PUT), so the GET bodies have their real size. Prints a
Markdown table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EMAIL_CONFIG = "/api/v1/transports/email-config"
ROOT = Path(__file__).resolve().parent.parent


def start_sandbox(tenants: int, ready_file: Path, latency_ms: float = 0) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "reconciler.sandbox", "serve", "--tenants", str(tenants)]
    command += ["--no-rate-limit", "--ready-file", str(ready_file)]
    if latency_ms:
        command += ["--latency-ms", str(latency_ms)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the sandbox is ready (or dies)
    if not line.startswith("READY "):
        process.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return process


def request_bytes(
    host: str, port: int, method: str, path: str, key: str, body: bytes = b""
) -> bytes:
    head = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Authorization: Bearer {key}",
        "Accept: application/json",
    ]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def configure_all(fleet: dict[str, Any], host: str, port: int) -> None:
    """PUT a real BasicAuth configuration on every tenant (16 at a time)."""
    smtp_port = fleet["smtp_ports"]["StartTLS"]
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    for tenant in fleet["tenants"]:
        queue.put_nowait(tenant)

    async def worker() -> None:
        reader, writer = await connect(host, port)
        while not queue.empty():
            tenant = queue.get_nowait()
            config = {
                "serverAddress": fleet["smtp_host"],
                "serverPort": smtp_port,
                "securityType": "StartTLS",
                "username": tenant["smtp_username"],
                "emailPassword": tenant["smtp_password"],
                "emailAddress": tenant["email_address"],
                "senderName": tenant["sender_name"],
            }
            body = json.dumps({"serviceProvider": "BasicAuth", "providerConfig": config}).encode()
            path = f"/t/{tenant['name']}{EMAIL_CONFIG}"
            status, _ = await exchange(
                reader, writer, request_bytes(host, port, "PUT", path, tenant["api_key"], body)
            )
            if status != 204:
                raise SystemExit(f"PUT for {tenant['name']} answered {status}")
        writer.close()

    await asyncio.gather(*(worker() for _ in range(16)))


async def measure(
    requests: list[bytes], host: str, port: int, connections: int, duration: float, warmup: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def worker(offset: int) -> None:
        nonlocal errors
        reader, writer = await connect(host, port)
        index = offset
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                break
            status, _ = await exchange(reader, writer, requests[index % len(requests)])
            index += 1
            if sent >= measure_from:
                latencies.append(time.perf_counter() - sent)
                errors += status != 200
        writer.close()

    await asyncio.gather(*(worker(i * 7) for i in range(connections)))
    latencies.sort()
    return {
        "connections": connections,
        "requests": len(latencies),
        "errors": errors,
        "seconds": duration,
        "get_per_s": round(len(latencies) / duration),
        "p50_ms": round(latencies[len(latencies) // 2] * 1e3, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1e3, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1e3, 3),
    }


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| connections | GET/s | p50 (ms) | p99 (ms) | requests | non-200 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['connections']} | {r['get_per_s']:,} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['requests']:,} | {r['errors']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per level")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring")
    parser.add_argument("--connections", default="1,16,64,128")
    parser.add_argument(
        "--latency-ms", type=float, default=0, help="latency injected per request (e.g. 50)"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/sandbox_throughput.json")
    args = parser.parse_args()
    levels = [int(n) for n in args.connections.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        ready_file = Path(tmp) / "ready.json"
        process = start_sandbox(args.tenants, ready_file, args.latency_ms)
        try:
            fleet = json.loads(ready_file.read_text())
            host, port = fleet["base_url"].removeprefix("http://").rsplit(":", 1)
            asyncio.run(configure_all(fleet, host, int(port)))
            requests = [
                request_bytes(host, int(port), "GET", f"/t/{t['name']}{EMAIL_CONFIG}", t["api_key"])
                for t in fleet["tenants"]
            ]
            results = [
                asyncio.run(measure(requests, host, int(port), n, args.duration, args.warmup))
                for n in levels
            ]
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    table = markdown(results)
    print(table)
    document = {
        "benchmark": "sandbox_throughput",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "tenants": args.tenants,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
