"""What loading the configuration costs: `load_config` over a fleet of tenant
files, and `qlik-email validate` over the same files, for one build or more.

    .venv/bin/python bench/config_load.py [--tenants 10000] [--repeats 5] \
        [--build before=/tmp/cfg-before] [--fleet DIR] [--json FILE]

A build is a source tree (a checkout holding `reconciler/`), run with this
venv's Python and PYTHONPATH pointing at it; this tree is always measured, as
`current`. An earlier commit can be measured beside it in the same run:

    git worktree add --detach /tmp/cfg-before 8283bba
    .venv/bin/python bench/config_load.py --build before=/tmp/cfg-before

The fleet is written by the sandbox (`Sandbox.write_config`, seed 1, one
BasicAuth tenant file per tenant, the sandbox stopped before any measuring)
unless `--fleet` names an existing configuration repository. Every measured
run is a process of its own, the builds alternating (before, current,
before, ...) so that a slower minute of the machine costs all alike:

- `load_config`: CPU time (user + sys, `time.process_time`) and wall time of
  the call alone, in a process that has imported `reconciler.config` first;
  also the CPU time of that import, whether `jsonschema` was imported by the
  end, and a digest of `repr(DesiredState)` (builds must agree on it);
- `validate`: the CLI (`NO_COLOR=1 qlik-email validate DIR`) as a user runs it,
  wall time and CPU time (user + sys of the process, from `os.wait4`).

Reported: the median of `--repeats` runs of each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Runs in the measured process: argv[1] is the configuration repository.
PROBE = """
import hashlib, json, sys, time
c0 = time.process_time()
from reconciler.config import load_config
import_cpu = time.process_time() - c0
import reconciler
c0, w0 = time.process_time(), time.perf_counter()
state = load_config(sys.argv[1])
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
print(json.dumps({
    "import_cpu_s": import_cpu, "cpu_s": cpu, "wall_s": wall,
    "tenants": len(state.tenants), "jsonschema": "jsonschema" in sys.modules,
    "digest": hashlib.sha256(repr(state).encode()).hexdigest()[:16],
    "source": reconciler.__file__,
}))
"""
CLI = "import sys; from reconciler.cli import run; sys.argv[0] = 'qlik-email'; run()"


def write_fleet(root: Path, tenants: int) -> Path:
    """A configuration repository of `tenants` tenant files under `root`."""
    sys.path.insert(0, str(ROOT))
    from reconciler.sandbox import Sandbox

    with Sandbox(tenants=tenants, seed=1, rate_limits=False) as sandbox:
        return sandbox.write_config(root)


def environment(build: Path) -> dict[str, str]:
    # The processes run in the fleet's directory (as a user runs validate in a
    # repository): with `python -c`, the current directory comes first on
    # sys.path, and must not be a checkout.
    return {**os.environ, "PYTHONPATH": str(build), "NO_COLOR": "1"}


def load_run(build: Path, fleet: Path) -> dict[str, Any]:
    """One `load_config` in a fresh process of `build`."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "."],
        env=environment(build),
        cwd=fleet,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    if not Path(result["source"]).is_relative_to(build):
        raise SystemExit(f"measured {result['source']}, not the build at {build}")
    return result


def validate_run(build: Path, fleet: Path) -> dict[str, float]:
    """One `qlik-email validate` of `build`: wall and CPU time of the process."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "validate", "."],
        env=environment(build),
        cwd=fleet,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        message = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"validate failed for {build}: {message[:2000]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime}


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(run[key]) for run in runs)


def measure(builds: dict[str, Path], fleet: Path, repeats: int) -> dict[str, Any]:
    loads: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    validates: dict[str, list[dict[str, float]]] = {name: [] for name in builds}
    for _ in range(repeats):
        for name, build in builds.items():
            loads[name].append(load_run(build, fleet))
            validates[name].append(validate_run(build, fleet))
    summary: dict[str, Any] = {}
    for name in builds:
        runs = loads[name]
        summary[name] = {
            "tenants": runs[0]["tenants"],
            "digests": sorted({run["digest"] for run in runs}),
            "jsonschema_imported": any(run["jsonschema"] for run in runs),
            "import_cpu_s": median(runs, "import_cpu_s"),
            "load_cpu_s": median(runs, "cpu_s"),
            "load_wall_s": median(runs, "wall_s"),
            "load_cpu_runs_s": [round(run["cpu_s"], 3) for run in runs],
            "validate_wall_s": median(validates[name], "wall_s"),
            "validate_cpu_s": median(validates[name], "cpu_s"),
        }
    return summary


def table(summary: dict[str, Any]) -> str:
    lines = [
        "| build | load_config CPU (s) | per file (µs) | load_config wall (s) "
        "| import (ms) | validate wall (s) | validate CPU (s) | jsonschema imported |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in summary.items():
        per_file = row["load_cpu_s"] / max(row["tenants"], 1) * 1e6
        lines.append(
            f"| {name} | {row['load_cpu_s']:.2f} | {per_file:.0f} | {row['load_wall_s']:.2f} "
            f"| {row['import_cpu_s'] * 1000:.0f} | {row['validate_wall_s']:.2f} "
            f"| {row['validate_cpu_s']:.2f} | {'yes' if row['jsonschema_imported'] else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--build", action="append", default=[], help="NAME=SOURCE_TREE")
    parser.add_argument("--fleet", type=Path, help="an existing configuration repository")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    builds = {
        name: Path(tree).resolve() for name, _, tree in (b.partition("=") for b in args.build)
    }
    builds["current"] = ROOT
    with tempfile.TemporaryDirectory(prefix="config-load-") as scratch:
        fleet = (args.fleet or write_fleet(Path(scratch) / "fleet", args.tenants)).resolve()
        summary = measure(builds, fleet, args.repeats)
    digests = {tuple(row["digests"]) for row in summary.values()}
    print(f"{platform.python_version()}, {os.cpu_count()} CPUs, {args.repeats} runs each")
    print(table(summary))
    print("DesiredState digests:", "all equal" if len(digests) == 1 else f"DIFFER {digests}")
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if len(digests) != 1:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
