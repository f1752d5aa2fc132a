"""Before and after, in one run: the headline figures of `bench/run.py` for two
builds of qlik-email, against the same sandbox processes.

    .venv/bin/python bench/compare.py --baseline OTHER/.venv/bin/qlik-email \
        [--repeats 3] [--json bench/results/compare.json]

`--baseline` is the `qlik-email` command of the build to compare with (for
example a checkout of an earlier commit installed in its own venv); the other
is this tree's. Both run against one sandbox per fleet size (this tree's), and
their runs alternate (baseline, current, baseline, ...) so that a slower
minute of the machine costs both alike. Reported: medians, and the change.

1. `plan` over 1,000 tenants at 50 ms latency, C=64 (ideal 0.80 s);
2. `apply` over the same 1,000 tenants against the sandbox's plain SMTP
   listener, C=64: the apply phase (ideal 2.40 s);
3. `plan` over 10,000 tenants at zero latency: client CPU per tenant, peak RSS;
   and the same plan as the workflows run it (`--out plan.json --markdown
   plan.md`): client CPU per tenant;
4. `plan` over the 10,000 tenants at 50 ms latency, C=64 (ideal 7.85 s);
5. `qlik-email --help`, and `validate` over the 1,000 tenant files;
6. 429 responses over every run.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    DEFAULT_CONCURRENCY,
    LATENCY_MS,
    ROOT,
    Fleet,
    Run,
    apply_phase_s,
    change_sender_names,
    check,
    cli_command,
    machine,
    sandbox,
    use_plain_smtp,
)
from run import run_cli as run_once

Builds = dict[str, list[str]]


def alternate(
    builds: Builds, repeats: int, one: Callable[[list[str]], Run]
) -> dict[str, list[Run]]:
    """`repeats` runs of each build, interleaved."""
    runs: dict[str, list[Run]] = {name: [] for name in builds}
    for _ in range(repeats):
        for name, command in builds.items():
            runs[name].append(one(command))
    return runs


def median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3)


def measure(builds: Builds, repeats: int, work: Path) -> dict[str, Any]:
    n, big = 1000, 10_000
    results: dict[str, Any] = {name: {} for name in builds}
    too_many: dict[str, int] = {name: 0 for name in builds}

    def count_429(name: str, run: Run) -> Run:
        too_many[name] += int(run.server.get("responses429", 0) or 0)
        return run

    def plans(fleet: Fleet, *extra: str) -> dict[str, list[Run]]:
        """`repeats` plans of `fleet` by each build, interleaved, their 429s counted."""
        args = ["plan", str(fleet.config), "--no-progress", *extra]
        runs = alternate(builds, repeats, lambda c: check(run_once(args, fleet, command=c)))
        for name, each in runs.items():
            for run in each:
                count_429(name, run)
        return runs

    def middle_cpu(runs: list[Run]) -> Run:
        return sorted(runs, key=lambda r: r.cpu_s)[len(runs) // 2]

    with sandbox(n, LATENCY_MS, work) as fleet:
        config = str(fleet.config)
        for command in builds.values():
            check(run_once(["validate", config], command=command))  # warm caches
        for name, runs in plans(fleet).items():
            results[name]["plan_1000_s"] = median([r.wall_s for r in runs])
        use_plain_smtp(fleet)
        generation = [0]

        def apply(command: list[str]) -> Run:
            generation[0] += 1
            change_sender_names(fleet, generation[0])
            args = ["apply", config, "--auto-approve", "--progress", "--format", "json"]
            report = work / "apply.json"
            run = check(run_once(args, fleet, out=report, command=command))
            applied = json.loads(report.read_text())["summary"]["applied"]
            if applied != n:
                raise SystemExit(f"{shlex.join(command)}: applied {applied} of {n} tenants")
            return run

        applies = alternate(builds, repeats, apply)
        for name, runs in applies.items():
            for run in runs:
                count_429(name, run)
            phases = [apply_phase_s(r) for r in runs]
            results[name]["apply_phase_s"] = median([p for p in phases if p is not None])
        helps = alternate(builds, max(5, repeats), lambda c: check(run_once(["--help"], command=c)))
        validates = alternate(
            builds, max(5, repeats), lambda c: check(run_once(["validate", config], command=c))
        )
        for name in builds:
            results[name]["help_s"] = median([r.wall_s for r in helps[name]])
            results[name]["validate_1000_s"] = median([r.wall_s for r in validates[name]])
    with sandbox(big, 0.0, work) as fleet:
        for command in builds.values():
            check(run_once(["validate", str(fleet.config)], command=command))
        for name, runs in plans(fleet).items():
            middle = middle_cpu(runs)
            results[name]["cpu_ms_per_tenant_10000"] = round(middle.cpu_s / big * 1000, 3)
            results[name]["rss_mb_10000"] = middle.maxrss_mb
            results[name]["plan_10000_s"] = median([r.wall_s for r in runs])
        # As the workflows run it: the saved plan and the Markdown summary too.
        files = ["--out", str(work / "plan.json"), "--markdown", str(work / "plan.md")]
        for name, runs in plans(fleet, *files).items():
            cpu = middle_cpu(runs).cpu_s
            results[name]["ci_cpu_ms_per_tenant_10000"] = round(cpu / big * 1000, 3)
    with sandbox(big, LATENCY_MS, work) as fleet:
        for name, runs in plans(fleet).items():
            results[name]["plan_10000_50ms_s"] = median([r.wall_s for r in runs])
    for name in builds:
        results[name]["responses_429"] = too_many[name]
    return results


ROWS = [
    ("plan_1000_s", "plan, 1,000 tenants, 50 ms latency, C=64 (ideal 0.80 s)", "s"),
    ("apply_phase_s", "apply phase, 1,000 tenants, plain SMTP, C=64 (ideal 2.40 s)", "s"),
    ("cpu_ms_per_tenant_10000", "plan, 10,000 tenants, zero latency: client CPU per tenant", "ms"),
    ("plan_10000_s", "... its wall time", "s"),
    ("rss_mb_10000", "... its client peak RSS", "MB"),
    (
        "ci_cpu_ms_per_tenant_10000",
        "the same plan as the workflows run it (`--out`, `--markdown`): CPU per tenant",
        "ms",
    ),
    ("plan_10000_50ms_s", "plan, 10,000 tenants, 50 ms latency, C=64 (ideal 7.85 s)", "s"),
    ("help_s", "`qlik-email --help`", "s"),
    ("validate_1000_s", "`validate`, 1,000 tenant files", "s"),
    ("responses_429", "429 responses, all runs", ""),
]


def table(results: dict[str, Any], baseline: str, current: str) -> str:
    lines = [
        f"| measurement | {baseline} | {current} | change |",
        "|---|---:|---:|---:|",
    ]
    for key, label, unit in ROWS:
        before, after = results[baseline][key], results[current][key]
        change = ""
        if before and not math.isnan(before):
            change = f"{(after - before) / before:+.0%}"
        lines.append(f"| {label} | {before:g} {unit} | {after:g} {unit} | {change} |")
    ideal = math.ceil(1000 / DEFAULT_CONCURRENCY) * LATENCY_MS / 1000
    lines.append(
        f"| plan, 1,000 tenants: ratio to its ideal | "
        f"{results[baseline]['plan_1000_s'] / ideal:.2f}x | "
        f"{results[current]['plan_1000_s'] / ideal:.2f}x | |"
    )
    big = math.ceil(10_000 / DEFAULT_CONCURRENCY) * LATENCY_MS / 1000
    lines.append(
        f"| plan, 10,000 tenants at 50 ms: ratio to its ideal | "
        f"{results[baseline]['plan_10000_50ms_s'] / big:.2f}x | "
        f"{results[current]['plan_10000_50ms_s'] / big:.2f}x | |"
    )
    lines.append(
        f"| apply phase: ratio to its ideal | "
        f"{results[baseline]['apply_phase_s'] / (3 * ideal):.2f}x | "
        f"{results[current]['apply_phase_s'] / (3 * ideal):.2f}x | |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the qlik-email command to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/compare.json")
    args = parser.parse_args()
    builds = {"before": shlex.split(args.baseline), "after": cli_command()}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qlik-email-compare-") as tmp:
        results = measure(builds, args.repeats, Path(tmp))
    document = {
        "benchmark": "compare",
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "builds": {name: shlex.join(command) for name, command in builds.items()},
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    info = document["machine"]
    print(f"{info['cpus']} CPUs ({info['cpu_model']}), Python {info['python']}")
    print(table(results, "before", "after"))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nWritten to {args.json} ({document['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
