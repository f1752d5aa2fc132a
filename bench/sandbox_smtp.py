"""The sandbox's CPU per PUT and per verify-connection (BasicAuth, real SMTP logins).

    .venv/bin/python bench/sandbox_smtp.py [--build before=/tmp/sbx-before]
        [--requests 1000] [--in-flight 64] [--security none,StartTLS]
        [--repeat 3] [--no-apply] [--json bench/results/sandbox_smtp.json]

Each build (`LABEL=PATH`, a checkout whose `reconciler` package runs with
PYTHONPATH=PATH; this checkout, `this`, always runs) serves a sandbox in its
own process (`python -m reconciler.sandbox serve --no-rate-limit`), and its
CPU time (user + system, /proc/PID/stat) is read around each measured batch.
Two measurements, builds interleaved within each repeat, medians reported:

1. requests: this process is the client (raw asyncio streams, `--in-flight`
   keep-alive connections, no injected latency). Per security type it sends
   N PUTs of BasicAuth configurations pointing at that SMTP listener (each a
   real connect, EHLO [STARTTLS, EHLO], AUTH and QUIT by the sandbox), then N
   verify-connections, then N GETs for reference: ms of sandbox CPU per
   request. The sandbox has the CPU to itself (and a core of its own).
2. apply (as bench/run.py): the real CLI (this checkout's) applies a new
   senderName to N tenants at 50 ms latency, 64 in flight, so N GETs, PUTs,
   verify-connections and read-back GETs, with client and sandbox competing
   for the same cores: the sandbox's CPU for the whole apply, and the apply
   phase against its ideal (ceil(N/64) x 3 x 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import run as fleet_bench
from sandbox_throughput import EMAIL_CONFIG, connect, exchange, request_bytes

ROOT = Path(__file__).resolve().parent.parent
APPLY_LATENCY_MS = 50.0
APPLY_CONCURRENCY = 64  # the CLI's default


def cpu_s(pid: int) -> float:
    """CPU time (user + sys) process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def sandbox(build: Path, tenants: int, work: Path, *options: str) -> Iterator[dict[str, Any]]:
    """`build`'s sandbox in a process of its own; yields its ready-file document."""
    ready = work / "ready.json"
    command = [sys.executable, "-m", "reconciler.sandbox", "serve", "--tenants", str(tenants)]
    command += ["--no-rate-limit", "--ready-file", str(ready), *options]
    with fleet_bench.serving(command, build, {**os.environ, "PYTHONPATH": str(build)}):
        yield json.loads(ready.read_text())


async def run_batch(
    host: str, port: int, requests: list[bytes], expected: int, in_flight: int
) -> float:
    """Send every request over `in_flight` connections; wall seconds. Any other
    status, or a verify-connection that did not succeed, stops the benchmark."""
    queue = list(reversed(requests))

    async def worker() -> None:
        reader, writer = await connect(host, port)
        while queue:
            status, body = await exchange(reader, writer, queue.pop())
            if status != expected or (status == 200 and json.loads(body).get("success") is False):
                raise SystemExit(f"unexpected answer {status}: {body[:300]!r}")
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - started


def put_body(fleet: dict[str, Any], tenant: dict[str, str], security: str) -> bytes:
    config = {
        "serverAddress": fleet["smtp_host"],
        "serverPort": fleet["smtp_ports"][security],
        "securityType": security,
        "username": tenant["smtp_username"],
        "emailPassword": tenant["smtp_password"],
        "emailAddress": tenant["email_address"],
        "senderName": tenant["sender_name"],
    }
    return json.dumps({"serviceProvider": "BasicAuth", "providerConfig": config}).encode()


def measure_requests(build: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """ms of sandbox CPU per request (and wall s per batch), by security type."""
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, sandbox(build, args.requests, Path(tmp)) as fleet:
        host, port_text = fleet["base_url"].removeprefix("http://").rsplit(":", 1)
        port = int(port_text)

        def request(method: str, tenant: dict[str, str], suffix: str, body: bytes) -> bytes:
            path = f"/t/{tenant['name']}{EMAIL_CONFIG}{suffix}"
            return request_bytes(host, port, method, path, tenant["api_key"], body)

        verify = "/actions/verify-connection"
        tenants = fleet["tenants"]
        for security in args.security:
            puts = [request("PUT", t, "", put_body(fleet, t, security)) for t in tenants]
            batches = {
                "put": (puts, 204),
                "verify": ([request("POST", t, verify, b"") for t in tenants], 200),
                "get": ([request("GET", t, "", b"") for t in tenants], 200),
            }
            row: dict[str, float] = {}
            for operation, (requests, expected) in batches.items():
                before = cpu_s(fleet["pid"])
                wall = asyncio.run(run_batch(host, port, requests, expected, args.in_flight))
                row[operation] = round((cpu_s(fleet["pid"]) - before) / len(requests) * 1e3, 3)
                row[operation + "_wall_s"] = round(wall, 3)
            results[security] = row
    return results


def measure_apply(build: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """The sandbox's CPU (s) over one CLI apply of every tenant, by security type."""
    results: dict[str, dict[str, float]] = {}
    for security in args.security:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            config = work / "fleet"
            options = ["--latency-ms", str(APPLY_LATENCY_MS), "--seed", "1"]
            with sandbox(build, args.requests, work, *options, "--write-config", str(config)) as d:
                names = [t["name"] for t in d["tenants"]]
                fleet = fleet_bench.Fleet(d["base_url"], config, names, d["pid"], d["smtp_ports"])
                if security == "none":
                    fleet_bench.use_plain_smtp(fleet)  # the config repository says StartTLS
                fleet_bench.check(fleet_bench.run_cli(["validate", str(config)]))  # warm caches
                fleet_bench.change_sender_names(fleet, 1)
                arguments = ["apply", str(config), "--auto-approve", "--progress"]
                arguments += ["--format", "json"]
                done = fleet_bench.run_cli(arguments, fleet, out=work / "apply.json")
                fleet_bench.check(done)
                report = json.loads((work / "apply.json").read_text())
                if report["summary"]["applied"] != len(names):
                    raise SystemExit(f"apply applied {report['summary']['applied']} tenants")
            ideal = math.ceil(len(names) / APPLY_CONCURRENCY) * 3 * APPLY_LATENCY_MS / 1000
            results[security] = {
                "sandbox_cpu_s": done.server_cpu_s or math.nan,
                "client_cpu_s": done.cpu_s,
                "phase_s": fleet_bench.apply_phase_s(done) or math.nan,
                "ideal_phase_s": ideal,
            }
    return results


def medians(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    first = runs[0]
    return {
        security: {key: statistics.median(run[security][key] for run in runs) for key in row}
        for security, row in first.items()
    }


def markdown(
    requests: dict[str, dict[str, dict[str, float]]],
    applies: dict[str, dict[str, dict[str, float]]],
    tenants: int,
) -> str:
    lines = [
        "| build | SMTP | CPU per PUT (ms) | per verify (ms) | per GET (ms) |",
        "|---|---|---:|---:|---:|",
    ]
    for label, by_security in requests.items():
        for security, m in by_security.items():
            lines.append(
                f"| {label} | {security} | {m['put']:.2f} | {m['verify']:.2f} | {m['get']:.2f} |"
            )
    if applies:
        lines += [
            "",
            f"| build | SMTP | sandbox CPU, apply of {tenants:,} (s) | apply phase / ideal |",
            "|---|---|---:|---:|",
        ]
        for label, by_security in applies.items():
            for security, m in by_security.items():
                ratio = m["phase_s"] / m["ideal_phase_s"]
                lines.append(
                    f"| {label} | {security} | {m['sandbox_cpu_s']:.2f} "
                    f"| {m['phase_s']:.2f} s / {m['ideal_phase_s']:.2f} s = {ratio:.2f}x |"
                )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="tenants, so PUTs per batch")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--security", default="none,StartTLS")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-apply", action="store_true", help="skip the CLI apply runs")
    parser.add_argument(
        "--build", action="append", default=[], metavar="LABEL=PATH", help="another checkout"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/sandbox_smtp.json")
    args = parser.parse_args()
    args.security = args.security.split(",")
    builds = {"this": ROOT}
    for spec in args.build:
        label, _, path = spec.partition("=")
        builds[label] = Path(path).resolve()
    request_runs: dict[str, list[dict[str, dict[str, float]]]] = {b: [] for b in builds}
    apply_runs: dict[str, list[dict[str, dict[str, float]]]] = {b: [] for b in builds}
    for _ in range(args.repeat):
        for label, path in builds.items():
            request_runs[label].append(measure_requests(path, args))
            if not args.no_apply:
                apply_runs[label].append(measure_apply(path, args))
    request_medians = {label: medians(runs) for label, runs in request_runs.items()}
    apply_medians = {label: medians(runs) for label, runs in apply_runs.items() if runs}
    print(markdown(request_medians, apply_medians, args.requests))
    document = {
        "benchmark": "sandbox_smtp",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "builds": {label: str(path) for label, path in builds.items()},
        "requests": {"runs": request_runs, "medians": request_medians},
        "apply": {"runs": apply_runs, "medians": apply_medians},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
