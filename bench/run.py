"""qlik-email at fleet scale: plan, apply, client CPU and memory, start-up.

    .venv/bin/python bench/run.py [--quick] [--json bench/results/fleet.json]

The sandbox runs in its own process (`python -m reconciler.sandbox serve`,
Qlik's rate limits on), and every measured command is the real CLI in a
process of its own, as a user or CI runs it. Per run, the client's wall time,
CPU time (user + sys) and peak memory come from `os.wait4` on that process,
and the sandbox's counters (429s, requests in flight, server time per route)
from its `/_sandbox/stats` endpoint, reset before each run.

1. `plan` over N tenants with 50 ms latency per request at concurrency 1 (over
   a subset: one tenant at a time over 1,000 would take 50 s), 10 (Terraform's
   default parallelism) and the default (64), beside the ideal ceil(N/C) x 50 ms;
2. `apply --auto-approve` over the same N tenants (each run changes every
   tenant's senderName, so each run is N PUTs, verify-connections and
   read-backs), at the default concurrency and at 10. The apply phase is timed
   from the end of the plan read to the last tenant applied (stderr progress);
   its ideal is ceil(N/C) x 3 x 50 ms. The sandbox really logs in to its SMTP
   server on PUT and verify: the server time beyond the injected latency is
   reported as the SMTP cost. Twice: with the fleet's StartTLS listener, where
   the sandbox's TLS handshakes (both ends, in Python, on the same cores as
   the client) saturate it, and with its plain SMTP listener, where the
   harness costs little and the figures show the client;
3. client CPU and peak memory of `plan` over 1,000 and 10,000 tenants at zero
   latency (one sandbox of 10,000; the 1,000 are a subset);
4. start-up: `qlik-email --help`, and `validate` over the 1,000 tenant files.

Prints a Markdown table and writes everything as JSON. `--quick` runs a fifth
of the sizes with one repetition each (a smoke test, not the figures).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LATENCY_MS = 50.0
DEFAULT_CONCURRENCY = 64


@dataclass
class Run:
    """One CLI run, measured from outside."""

    args: list[str]
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    code: int
    stderr: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, line)
    server: dict[str, Any] = field(default_factory=dict)
    server_cpu_s: float | None = None

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("stderr")
        return data


@dataclass
class Fleet:
    """A sandbox process and the config repository written for it."""

    base_url: str
    config: Path
    names: list[str]
    pid: int
    smtp_ports: dict[str, int]

    def cpu_s(self) -> float:
        """CPU time (user + sys) the sandbox process has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def control(self, what: str) -> dict[str, Any]:
        method = "GET" if what == "stats" else "POST"
        request = urllib.request.Request(f"{self.base_url}/_sandbox/{what}", method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read()
        return json.loads(body) if body else {}


def cli_environment() -> dict[str, str]:
    """The environment the measured commands run in: this one, without colour,
    and with Python writing its bytecode caches (an environment with
    PYTHONDONTWRITEBYTECODE set would have every run of a checkout without
    them compile the whole package again, a few hundred ms of start-up)."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cli_command() -> list[str]:
    """The `qlik-email` console script next to this Python, else `python -m reconciler`."""
    script = Path(sys.executable).with_name("qlik-email")
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler"]


def run_cli(
    args: Sequence[str],
    fleet: Fleet | None = None,
    out: Path | None = None,
    command: Sequence[str] | None = None,
) -> Run:
    """Run the CLI once (`command`, by default this tree's); stdout to `out` (or
    /dev/null), stderr lines time-stamped."""
    server_cpu = None
    if fleet is not None:
        fleet.control("reset")
        server_cpu = fleet.cpu_s()
    stdout = open(out, "w") if out else subprocess.DEVNULL  # noqa: SIM115
    started = time.perf_counter()
    process = subprocess.Popen(
        [*(command or cli_command()), *args],
        cwd=ROOT,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environment(),
    )
    lines: list[tuple[float, str]] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))

    reader = threading.Thread(target=read_stderr)
    reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    if out:
        stdout.close()  # type: ignore[union-attr]
    run = Run(
        list(args),
        round(wall, 3),
        round(usage.ru_utime + usage.ru_stime, 3),
        round(usage.ru_maxrss / 1024, 1),  # kilobytes on Linux
        process.returncode,
        lines,
    )
    if fleet is not None and server_cpu is not None:
        run.server = fleet.control("stats")
        run.server_cpu_s = round(fleet.cpu_s() - server_cpu, 2)
    return run


@contextmanager
def sandbox(tenants: int, latency_ms: float, workdir: Path) -> Iterator[Fleet]:
    """A sandbox process serving `tenants` tenants, stopped (by its pid) afterwards."""
    ready_file = workdir / f"ready-{tenants}.json"
    config = workdir / f"fleet-{tenants}"
    command = [sys.executable, "-m", "reconciler.sandbox", "serve", "--tenants", str(tenants)]
    command += ["--latency-ms", str(latency_ms), "--seed", "1"]
    command += ["--ready-file", str(ready_file), "--write-config", str(config)]
    with serving(command, ROOT):
        described = json.loads(ready_file.read_text())
        names = [t["name"] for t in described["tenants"]]
        yield Fleet(described["base_url"], config, names, described["pid"], described["smtp_ports"])


@contextmanager
def serving(command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """`command` (a `reconciler.sandbox serve`) in a process of its own, once it
    has printed READY; stopped with SIGINT (killed after 30 s) afterwards."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the sandbox is ready (or dies)
        if not line.startswith("READY "):
            raise SystemExit(f"the sandbox in {cwd} did not start: {line!r}")
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def subset_root(fleet: Fleet, count: int) -> Path:
    """A root file next to the fleet's that names only its first `count` tenants."""
    root = fleet.config / f"first-{count}.yaml"
    text = (fleet.config / "qlik-email.yaml").read_text()
    files = "".join(f"  - tenants/{name}.yaml\n" for name in fleet.names[:count])
    root.write_text(re.sub(r"(?m)^tenants: .*$", "tenants:\n" + files.rstrip("\n"), text))
    return root


def change_sender_names(fleet: Fleet, generation: int) -> None:
    """Give every tenant a new senderName, so the next apply changes all of them."""
    for name in fleet.names:
        path = fleet.config / "tenants" / f"{name}.yaml"
        text = re.sub(r'(?m)^  senderName: .*$', f'  senderName: "{name} ({generation})"',
                      path.read_text())  # fmt: skip
        path.write_text(text)


def use_plain_smtp(fleet: Fleet) -> None:
    """Point the defaults at the sandbox's plain SMTP listener: logins without TLS."""
    root = fleet.config / "qlik-email.yaml"
    text = re.sub(r"(?m)^    serverPort: .*$", f"    serverPort: {fleet.smtp_ports['none']}",
                  root.read_text())  # fmt: skip
    root.write_text(text.replace("securityType: StartTLS", "securityType: none"))


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]


def check(run: Run, expected: Sequence[int] = (0,)) -> Run:
    if run.code not in expected:
        tail = "\n".join(line for _, line in run.stderr[-10:])
        raise SystemExit(f"{' '.join(run.args)} exited {run.code}:\n{tail}")
    return run


def apply_phase_s(run: Run) -> float | None:
    """From the end of the plan read to the last tenant applied, by the stderr lines."""
    read_done = [t for t, line in run.stderr if line.startswith("Reading tenants:")]
    applied = [t for t, line in run.stderr if line.startswith("Applying:")]
    if not read_done or not applied:
        return None
    return round(applied[-1] - read_done[-1], 3)


def server_extra_ms(run: Run, route: str) -> float | None:
    """Mean server time of `route` beyond the injected latency (SMTP, queueing)."""
    stats = run.server.get("routes", {}).get(route)
    return None if stats is None else round(stats["mean_ms"] - LATENCY_MS, 1)


# -- the measurements -------------------------------------------------------------------


def measure_latency_fleet(n: int, c1_subset: int, repeats: int, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"tenants": n, "latency_ms": LATENCY_MS}
    with sandbox(n, LATENCY_MS, work) as fleet:
        config = str(fleet.config)
        check(run_cli(["validate", config]))  # warms the disk cache and .pyc files
        subset = str(subset_root(fleet, c1_subset))
        plans = []
        for concurrency, target, count in (
            (1, subset, c1_subset),
            (10, config, n),
            (None, config, n),
        ):
            args = ["plan", target, "--no-progress"]
            if concurrency is not None:
                args += ["--concurrency", str(concurrency)]
            runs = [check(run_cli(args, fleet)) for _ in range(repeats)]
            c = concurrency or DEFAULT_CONCURRENCY
            plans.append(
                {
                    "concurrency": c,
                    "default": concurrency is None,
                    "tenants": count,
                    "ideal_s": math.ceil(count / c) * LATENCY_MS / 1000,
                    "runs": [r.summary() for r in runs],
                    "median": median_run(runs).summary(),
                }
            )
        results["plan"] = plans
        applies = []
        generation = 0
        plain_now = False
        for concurrency, times, plain in (
            (None, repeats, False),
            (10, 1, False),
            (None, repeats, True),
            (10, 1, True),
        ):
            if plain and not plain_now:
                use_plain_smtp(fleet)
                plain_now = True
            runs = []
            for _ in range(times):
                generation += 1
                change_sender_names(fleet, generation)
                args = ["apply", config, "--auto-approve", "--progress", "--format", "json"]
                if concurrency is not None:
                    args += ["--concurrency", str(concurrency)]
                report = work / "apply.json"
                runs.append(check(run_cli(args, fleet, out=report)))
                applied = json.loads(report.read_text())["summary"]["applied"]
                if applied != n:
                    raise SystemExit(f"apply applied {applied} of {n} tenants")
            c = concurrency or DEFAULT_CONCURRENCY
            middle = median_run(runs)
            applies.append(
                {
                    "concurrency": c,
                    "default": concurrency is None,
                    "smtp": "none (no TLS)" if plain else "StartTLS",
                    "tenants": n,
                    "ideal_phase_s": math.ceil(n / c) * 3 * LATENCY_MS / 1000,
                    "phase_s": apply_phase_s(middle),
                    "smtp_ms": {
                        "put": server_extra_ms(middle, "PUT /api/v1/transports/email-config"),
                        "verify": server_extra_ms(
                            middle, "POST /api/v1/transports/email-config/actions/verify-connection"
                        ),
                    },
                    "runs": [r.summary() for r in runs],
                    "median": middle.summary(),
                }
            )
        results["apply"] = applies
        results["startup"] = measure_startup(config, repeats=max(3, 2 * repeats + 1))
    return results


def measure_cpu_fleet(small: int, big: int, repeats: int, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with sandbox(big, 0.0, work) as fleet:
        check(run_cli(["validate", str(fleet.config)]))
        for count, target in ((small, subset_root(fleet, small)), (big, fleet.config)):
            runs = [
                check(run_cli(["plan", str(target), "--no-progress"], fleet))
                for _ in range(repeats)
            ]
            middle = sorted(runs, key=lambda r: r.cpu_s)[len(runs) // 2]
            results[str(count)] = {
                "tenants": count,
                "runs": [r.summary() for r in runs],
                "median": middle.summary(),
                "cpu_ms_per_tenant": round(middle.cpu_s / count * 1000, 3),
            }
    return results


def measure_startup(config: str, repeats: int) -> dict[str, Any]:
    helps = [check(run_cli(["--help"])) for _ in range(repeats)]
    validates = [check(run_cli(["validate", config])) for _ in range(repeats)]
    return {
        "help_s": statistics.median(r.wall_s for r in helps),
        "validate_s": statistics.median(r.wall_s for r in validates),
        "validate_tenants": len(list((Path(config) / "tenants").glob("*.yaml"))),
    }


# -- the report -------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "**missed**"


def table(results: dict[str, Any]) -> str:
    fleet = results["latency"]
    n = fleet["tenants"]
    rows = [
        "| measurement | wall | ideal | client CPU | sandbox CPU | client peak RSS | 429s "
        "| peak in flight | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    by_c = {p["concurrency"]: p for p in fleet["plan"]}
    for p in fleet["plan"]:
        m = p["median"]
        label = f"plan, {p['tenants']:,} tenants, C={p['concurrency']}"
        if p["tenants"] != n:
            label += f" (a {p['tenants']}-tenant subset)"
        target = ""
        if p["default"]:
            faster = by_c[10]["median"]["wall_s"] / m["wall_s"]
            wanted = p["concurrency"] / 10 / 1.5
            target = (
                f"<= 1.5 s: {verdict(m['wall_s'] <= 1.5)}; "
                f"{faster:.1f}x faster than C=10 (>= {wanted:.1f}x): {verdict(faster >= wanted)}"
            )
        rows.append(_row(label, m, f"{p['ideal_s']:.2f} s", target))
    tens = {a["smtp"]: a for a in fleet["apply"] if a["concurrency"] == 10}
    for a in fleet["apply"]:
        ten = tens[a["smtp"]]
        m = a["median"]
        phase, smtp = a["phase_s"], a["smtp_ms"]
        label = f"apply, {n:,} tenants, C={a['concurrency']}, SMTP {a['smtp']}"
        rows.append(_row(f"{label}: whole command", m, "", ""))
        target = ""
        if a["default"] and phase is not None:
            ratio = phase / a["ideal_phase_s"]
            faster = ten["phase_s"] / phase if ten["phase_s"] else float("nan")
            wanted = a["concurrency"] / 10 / 1.5
            target = (
                f"<= 1.5x ideal ({ratio:.2f}x): {verdict(ratio <= 1.5)}; "
                f"{faster:.1f}x faster than C=10 (>= {wanted:.1f}x): {verdict(faster >= wanted)}"
            )
            busy = (m["server_cpu_s"] or 0) / m["wall_s"]
            target += f"; the sandbox's CPU time was {busy:.0%} of the command's wall time"
        rows.append(
            f"| ... its apply phase (PUT, verify, GET); the sandbox spent {smtp['put']} ms per "
            f"PUT and {smtp['verify']} ms per verify beyond the 50 ms latency | {_s(phase)} "
            f"| {a['ideal_phase_s']:.2f} s | | | | | | {target} |"
        )
    cpu = results["cpu"]
    small, big = (cpu[k] for k in sorted(cpu, key=int))
    for entry in (small, big):
        m = entry["median"]
        per = entry["cpu_ms_per_tenant"]
        target = f"{per:.2f} ms CPU per tenant"
        if entry is big:
            ratio = m["cpu_s"] / small["median"]["cpu_s"]
            wall_ratio = m["wall_s"] / small["median"]["wall_s"]
            target += (
                f" (<= 1): {verdict(per <= 1)}; CPU ratio {ratio:.1f}, wall ratio "
                f"{wall_ratio:.1f} (<= 11): {verdict(max(ratio, wall_ratio) <= 11)}; "
                f"RSS <= 250 MB: {verdict(m['maxrss_mb'] <= 250)}"
            )
        label = f"plan, {entry['tenants']:,} tenants, zero latency, C={DEFAULT_CONCURRENCY}"
        rows.append(_row(label, m, "", target))
    start = fleet["startup"]
    rows.append(
        f"| `qlik-email --help` (median) | {_s(start['help_s'])} | | | | | | | "
        f"<= 0.25 s: {verdict(start['help_s'] <= 0.25)} |"
    )
    rows.append(
        f"| `validate`, {start['validate_tenants']:,} tenant files (median) "
        f"| {_s(start['validate_s'])} | | | | | | | <= 2 s: {verdict(start['validate_s'] <= 2)} |"
    )
    return "\n".join(rows)


def _row(label: str, m: dict[str, Any], ideal: str, target: str) -> str:
    server = m.get("server", {})
    return (
        f"| {label} | {_s(m['wall_s'])} | {ideal} | {_s(m['cpu_s'])} | {_s(m['server_cpu_s'])} "
        f"| {m['maxrss_mb']:.0f} MB | {server.get('responses429', '')} "
        f"| {server.get('peakInFlight', '')} | {target} |"
    )


def _s(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.2f} s"


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/fleet.json")
    args = parser.parse_args()
    scale, repeats = (5, 1) if args.quick else (1, 3)
    n, c1_subset, big = 1000 // scale, 100 // scale, 10_000 // scale
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qlik-email-bench-") as tmp:
        work = Path(tmp)
        results = {
            "benchmark": "fleet",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "quick": args.quick,
            "machine": machine(),
            "latency": measure_latency_fleet(n, c1_subset, repeats, work),
            "cpu": measure_cpu_fleet(n, big, repeats, work),
        }
    results["seconds"] = round(time.perf_counter() - started, 1)
    info = results["machine"]
    print(f"{info['cpus']} CPUs ({info['cpu_model']}), Python {info['python']}")
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nWritten to {args.json} ({results['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
