"""Time spent in Python's cyclic garbage collector by `plan`, and in its exit.

    .venv/bin/python bench/gc_time.py [--tenants 10000] [--repeats 3]

One sandbox process (zero latency, Qlik's rate limits on) serves the fleet;
each run is `plan` in a fresh process of its own, runs alternating between:
the collector's young-generation threshold at Python's default (700); at the
console script's (`reconciler.cli.app.GC_YOUNG_THRESHOLD`); and that, with
the objects frozen (`gc.freeze()`) once the command is done, as the console
script does. The collector's time during the command comes from
`gc.callbacks` (start/stop of every collection), so it does not depend on how
busy the machine is; the process's CPU (`os.wait4`), wall time, and the time
from the command's return to the process's end are reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, machine, sandbox

# Runs in the measured process: `plan` through the CLI's main(), stdout dropped.
DRIVER = """
import gc, json, os, sys, time
threshold, freeze = int(sys.argv[2]), sys.argv[3] == "freeze"
gc.set_threshold(threshold)
spent = {0: 0.0, 1: 0.0, 2: 0.0}
count = {0: 0, 1: 0, 2: 0}
started = []

def timed(phase, info):
    if phase == "start":
        started.append(time.perf_counter())
    else:
        generation = info["generation"]
        spent[generation] += time.perf_counter() - started.pop()
        count[generation] += 1

gc.callbacks.append(timed)
from reconciler.cli.app import main
sys.stdout = open(os.devnull, "w")
code = main(["plan", "--no-progress", sys.argv[1]])
gc.callbacks.remove(timed)
print(json.dumps({
    "exit": code,
    "gc_s": sum(spent.values()),
    "by_generation_s": spent,
    "collections": count,
}), file=sys.stderr)
if freeze:
    gc.freeze()
print(time.perf_counter(), file=sys.stderr)  # the monotonic clock is system-wide
"""


def one(config: Path, threshold: int, freeze: bool) -> dict[str, Any]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(config), str(threshold), "freeze" if freeze else "-"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert process.stderr is not None
    err = process.stderr.read()
    _, _, usage = os.wait4(process.pid, 0)
    ended = time.perf_counter()
    lines = err.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-2])
    if result["exit"] not in (0, 2):
        raise SystemExit(f"plan failed: {err[-2000:]}")
    result["cpu_s"] = usage.ru_utime + usage.ru_stime  # the whole process, exit included
    result["rss_mb"] = usage.ru_maxrss / 1024
    result["wall_s"] = ended - started
    result["exit_s"] = ended - float(lines[-1])
    return result


def main() -> int:
    from reconciler.cli.app import GC_YOUNG_THRESHOLD

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    variants = {
        "threshold 700 (Python's default)": (700, False),
        f"threshold {GC_YOUNG_THRESHOLD:,}": (GC_YOUNG_THRESHOLD, False),
        f"threshold {GC_YOUNG_THRESHOLD:,}, frozen at exit (the CLI)": (GC_YOUNG_THRESHOLD, True),
    }
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in variants}
    with tempfile.TemporaryDirectory() as tmp, sandbox(args.tenants, 0.0, Path(tmp)) as fleet:
        for _ in range(args.repeats):
            for label, (threshold, freeze) in variants.items():
                runs[label].append(one(fleet.config, threshold, freeze))
    info = machine()
    print(
        f"{info['cpus']} CPUs ({info['cpu_model']}), Python {info['python']}; "
        f"`plan` over {args.tenants:,} tenants at zero latency, medians of {args.repeats}"
    )
    print(
        "| collector | GC time in the command | collections (gen 0/1/2) "
        "| CPU (every run) | wall | exit | peak RSS |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, results in runs.items():

        def median(key: str, results: list[dict[str, Any]] = results) -> float:
            return statistics.median(float(r[key]) for r in results)

        counts = results[len(results) // 2]["collections"]
        cpus = ", ".join(f"{float(r['cpu_s']):.2f}" for r in results)
        print(
            f"| {label} | {median('gc_s'):.2f} s | {counts['0']}/{counts['1']}/{counts['2']} "
            f"| {median('cpu_s'):.2f} s ({cpus}) | {median('wall_s'):.2f} s "
            f"| {median('exit_s'):.3f} s | {median('rss_mb'):.0f} MB |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
