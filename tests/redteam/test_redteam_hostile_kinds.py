"""`qlik-email sandbox --hostile KIND`, started as a user starts it, against the
real CLI as a process of its own, over real sockets:

- stacked-bomb: `Content-Encoding: gzip, gzip` holding 4 GiB of zeros costs
  little memory and time, and fails that tenant only (plan and import);
- retry-after-forever: a 503 with `Retry-After: 30` to everything ends within
  the tenant's deadline (`settings.deadline`), saying why (plan and apply).

`pytest -s tests/redteam/test_redteam_hostile_kinds.py` prints the figures
docs/security.md quotes."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redteam_checks import control_characters, forged_commands
from test_redteam_limits import run_measured

MAX_RSS_MB = 300
READ_DEADLINE_S = 3
WRITE_DEADLINE_S = 4
STARTUP_S = 5  # a Python process of the CLI, with a loaded machine
BODY_CAP = "with a body of more than 524288 bytes"


@dataclass(frozen=True)
class Fleet:
    root: Path
    base_url: str


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """`qlik-email sandbox` with tenant-001 a stacked bomb, tenant-002 a
    retry-after-forever and tenant-003 an honest tenant, until the tests end."""
    root = tmp_path_factory.mktemp("hostile-kinds") / "config"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "reconciler", "sandbox", "--tenants", "3", "--seed", "11"),
            *("--no-rate-limit", "--write-config", str(root)),
            *("--hostile", "stacked-bomb", "--hostile", "tenant-002=retry-after-forever"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        while not seen or not seen[-1].startswith("Press Ctrl-C"):
            seen.append(lines.get(timeout=30))
        banner = "".join(seen)
        assert "tenant-001 is hostile: stacked-bomb" in banner, banner
        assert "tenant-002 is hostile: retry-after-forever" in banner, banner
        base_url = banner.split(" tenant(s) at ", 1)[1].split("/t/<tenant>", 1)[0]
        root_file = root / "qlik-email.yaml"
        deadline = f"  deadline: {{read: {READ_DEADLINE_S}, write: {WRITE_DEADLINE_S}}}\n"
        root_file.write_text(root_file.read_text().replace("settings:\n", "settings:\n" + deadline))
        yield Fleet(root, base_url)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def errors_by_tenant(stdout: str) -> dict[str, str | None]:
    return {t["name"]: t.get("error") for t in json.loads(stdout)["tenants"]}


def clean_output(*texts: str) -> None:
    for text in texts:
        assert not forged_commands(text) and not control_characters(text)


def test_a_stacked_bomb_costs_little_and_fails_only_its_tenant(fleet: Fleet) -> None:
    code, stdout, stderr, rss_mb, elapsed = run_measured(
        "plan", str(fleet.root), "--tenant", "tenant-001", "--tenant", "tenant-003",
        "--format", "json",
    )  # fmt: skip
    print(f"\nstacked-bomb (4 GiB in gzip, gzip), plan: peak RSS {rss_mb:.0f} MB, {elapsed:.1f} s")
    assert code == 1, stderr
    errors = errors_by_tenant(stdout)
    assert errors["tenant-001"] is not None and BODY_CAP in errors["tenant-001"]
    assert errors["tenant-003"] is None
    assert rss_mb < MAX_RSS_MB
    assert elapsed < STARTUP_S + 5
    clean_output(stdout, stderr)


def test_import_reads_a_stacked_bomb_within_the_same_bounds(fleet: Fleet, tmp_path: Path) -> None:
    secrets = fleet.root / ".secrets"
    inventory = tmp_path / "tenants.csv"
    rows = ["name,url,apiKey"]
    for name in ("tenant-001", "tenant-003"):
        os.environ[f"KINDS_KEY_{name[-1]}"] = (secrets / f"{name}.apikey").read_text().strip()
        rows.append(f"{name},{fleet.base_url}/t/{name},${{env:KINDS_KEY_{name[-1]}}}")
    inventory.write_text("\n".join(rows) + "\n")
    os.environ["QLIK_EMAIL_ALLOWED_HOSTS"] = "127.0.0.1"
    try:
        code, stdout, stderr, rss_mb, elapsed = run_measured(
            "import", str(tmp_path / "out"), "--inventory", str(inventory)
        )
    finally:
        del os.environ["QLIK_EMAIL_ALLOWED_HOSTS"]
    print(f"\nstacked-bomb, import: peak RSS {rss_mb:.0f} MB, {elapsed:.1f} s")
    assert code == 1, (stdout, stderr)
    assert "tenant-001" in stderr + stdout and BODY_CAP in stderr + stdout
    assert not (tmp_path / "out").exists()  # nothing is written unless every tenant was read
    assert rss_mb < MAX_RSS_MB
    assert elapsed < STARTUP_S + 5


def test_retry_after_forever_ends_within_the_read_deadline_saying_why(fleet: Fleet) -> None:
    code, stdout, stderr, _, elapsed = run_measured(
        "plan", str(fleet.root), "--tenant", "tenant-002", "--tenant", "tenant-003",
        "--format", "json",
    )  # fmt: skip
    print(f"\nretry-after-forever, plan: {elapsed:.1f} s (read deadline {READ_DEADLINE_S} s)")
    assert code == 1, stderr
    errors = errors_by_tenant(stdout)
    error = errors["tenant-002"]
    assert error is not None and "Retry-After 30 s, more than the" in error
    assert f"deadline of {READ_DEADLINE_S} s (settings.deadline.read)" in error
    assert errors["tenant-003"] is None
    assert elapsed < READ_DEADLINE_S + STARTUP_S


def test_apply_against_retry_after_forever_ends_within_its_deadlines(fleet: Fleet) -> None:
    code, stdout, stderr, _, elapsed = run_measured(
        "apply", str(fleet.root), "--tenant", "tenant-002", "--auto-approve"
    )
    print(f"\nretry-after-forever, apply: {elapsed:.1f} s")
    assert code != 0, stdout
    assert "tenant-002" in stdout + stderr and "settings.deadline.read" in stdout + stderr
    assert elapsed < READ_DEADLINE_S + WRITE_DEADLINE_S + STARTUP_S
    clean_output(stdout, stderr)
