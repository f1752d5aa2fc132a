"""Instructions executed by `plan`, counted by valgrind: a CPU figure that does
not move with the machine's load.

    .venv/bin/python bench/instructions.py [--tenants 1000] [--baseline OTHER/qlik-email] \
        [--slope-from 100] [--plan-args '--format json']

One sandbox process (zero latency, Qlik's rate limits on) serves the fleet;
`plan --no-progress` runs under `valgrind --tool=callgrind` (child processes
followed, so a build that forks is counted whole), once per build. Wall and
CPU times on this shared 2-core VM swing by 10-50% from one minute to the
next; the instruction count of the same run moves by well under 1%. It is not
time (a cache miss costs more than an instruction), and valgrind slows the
client about fifty-fold, which makes the sandbox look instant: the count is
that of a zero-latency run. About a minute per build at 1,000 tenants.
`--slope-from K` also counts the plan of the first K tenant files and
reports the difference per tenant: the cost of one more tenant, start-up
left out.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, cli_command, cli_environment, machine, sandbox

REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(command: list[str], args: list[str]) -> int:
    """Instructions executed by `command ARGS` and every process it starts."""
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    valgrind += ["--trace-children=yes"]
    warm = subprocess.run([*command, *args], cwd=ROOT, env=cli_environment(), capture_output=True)
    if warm.returncode != 0:
        raise SystemExit(f"{command}: exit {warm.returncode}\n{warm.stderr[-2000:]!r}")
    done = subprocess.run(  # counted with the bytecode caches written by the run above
        [*valgrind, *command, *args],
        cwd=ROOT,
        env=cli_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    counts = [int(m.replace(",", "")) for m in REFS.findall(done.stderr)]
    if done.returncode != 0 or not counts:
        raise SystemExit(f"{command}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return sum(counts)  # one summary per process


def subset(config: Path, tenants: int, into: Path) -> Path:
    """A copy of the sandbox's configuration `config` with its first `tenants`
    tenant files only (the root file and the secrets as they are)."""
    shutil.copytree(config, into, ignore=shutil.ignore_patterns("tenants"))
    (into / "tenants").mkdir()
    for path in sorted((config / "tenants").glob("*.yaml"))[:tenants]:
        shutil.copy(path, into / "tenants" / path.name)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--baseline", help="another qlik-email command to count as well")
    parser.add_argument(
        "--slope-from",
        type=int,
        metavar="K",
        help="also count the plan of the first K tenants, and report the "
        "difference per tenant (start-up left out)",
    )
    parser.add_argument(
        "--plan-args", default="", help="more arguments for plan, e.g. '--format json'"
    )
    options = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    builds = {"this tree": cli_command()}
    if options.baseline:
        builds["baseline"] = [options.baseline]
    print(machine())
    extra = shlex.split(options.plan_args)
    with tempfile.TemporaryDirectory() as tmp, sandbox(options.tenants, 0.0, Path(tmp)) as fleet:
        args = ["plan", str(fleet.config), "--no-progress", *extra]
        small = None
        if options.slope_from:
            small = subset(fleet.config, options.slope_from, Path(tmp) / "subset")
        for name, command in builds.items():
            count = instructions(command, args)
            per_tenant = count / options.tenants / 1e6
            line = f"{name}: {count / 1e9:.3f} G instructions, {per_tenant:.2f} M per tenant"
            if small is not None:
                few = instructions(command, ["plan", str(small), "--no-progress", *extra])
                slope = (count - few) / (options.tenants - options.slope_from) / 1e6
                line += (
                    f"; {few / 1e9:.3f} G at {options.slope_from}: {slope:.3f} M per tenant more"
                )
            print(line)


if __name__ == "__main__":
    main()
