"""Time spent in Python's cyclic garbage collector during `plan`, by generation.

    .venv/bin/python bench/gc_time.py [--tenants 10000] [--repeats 3]

One sandbox process (zero latency, Qlik's rate limits on) serves the fleet;
each run is `plan` in a fresh process of its own, with the collector's
young-generation threshold at Python's default (700) or at the console
script's (`reconciler.cli.app.GC_YOUNG_THRESHOLD`), runs alternating. The
collector's own time comes from `gc.callbacks` (start/stop of every
collection), so it does not depend on how busy the machine is, unlike the
process's CPU time, which is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, machine, sandbox

# Runs in the measured process: `plan` through the CLI's main(), stdout dropped.
DRIVER = """
import gc, json, os, resource, sys, time
threshold = int(sys.argv[2])
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
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "exit": code,
    "gc_s": sum(spent.values()),
    "by_generation_s": spent,
    "collections": count,
    "cpu_s": usage.ru_utime + usage.ru_stime,
    "rss_mb": usage.ru_maxrss / 1024,
}), file=sys.stderr)
"""


def one(config: Path, threshold: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(config), str(threshold)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    result: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    if result["exit"] not in (0, 2):
        raise SystemExit(f"plan failed: {done.stderr[-2000:]}")
    return result


def main() -> int:
    from reconciler.cli.app import GC_YOUNG_THRESHOLD

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    thresholds = {
        "Python's default (700)": 700,
        f"the CLI's ({GC_YOUNG_THRESHOLD:,})": GC_YOUNG_THRESHOLD,
    }
    runs: dict[str, list[dict[str, object]]] = {label: [] for label in thresholds}
    with tempfile.TemporaryDirectory() as tmp, sandbox(args.tenants, 0.0, Path(tmp)) as fleet:
        for _ in range(args.repeats):
            for label, threshold in thresholds.items():
                runs[label].append(one(fleet.config, threshold))
    info = machine()
    print(
        f"{info['cpus']} CPUs ({info['cpu_model']}), Python {info['python']}; "
        f"`plan` over {args.tenants:,} tenants at zero latency, medians of {args.repeats}"
    )
    print(
        "| young-generation threshold | GC time | collections (gen 0/1/2) "
        "| CPU (median; every run) | peak RSS |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, results in runs.items():
        gc_s = statistics.median(float(r["gc_s"]) for r in results)  # type: ignore[arg-type]
        cpu_s = statistics.median(float(r["cpu_s"]) for r in results)  # type: ignore[arg-type]
        rss = statistics.median(float(r["rss_mb"]) for r in results)  # type: ignore[arg-type]
        counts = results[len(results) // 2]["collections"]
        assert isinstance(counts, dict)
        cpus = ", ".join(f"{float(r['cpu_s']):.2f}" for r in results)  # type: ignore[arg-type]
        print(
            f"| {label} | {gc_s:.2f} s | {counts['0']}/{counts['1']}/{counts['2']} "
            f"| {cpu_s:.2f} s ({cpus}) | {rss:.0f} MB |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
