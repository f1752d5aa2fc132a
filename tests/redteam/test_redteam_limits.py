"""Every limit holds end to end, measured on the CLI as a process of its own:
memory against endless and huge bodies, time against a server that sends one
byte a second, and one hostile tenant never sinks the others' run.

`pytest -s -m slow tests/redteam/test_redteam_limits.py` prints the figures
docs/security.md quotes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redteam_checks import control_characters, forged_commands

from reconciler.sandbox import Sandbox

pytestmark = pytest.mark.slow

TIMEOUT_S = 1
MAX_RSS_MB = 200
NAMES = ["endless", "huge", "deep", "slow", "clean"]
HOSTILE = {"endless": ("endless",), "huge": ("huge",), "deep": ("deep",), "slow": ("slow",)}
# 1 + 4 retries of TIMEOUT_S each, the backoff between them (at most
# 0.5 + 1 + 2 + 4 s), and the start of a Python process.
DEADLINE_S = 5 * TIMEOUT_S + 7.5 + 5


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with Sandbox(names=NAMES, seed=17, rate_limits=False, hostile=HOSTILE) as sandbox:
        root = sandbox.write_config(tmp_path_factory.mktemp("limits") / "config")
        with open(root / "qlik-email.yaml", "a") as handle:
            handle.write(f"settings:\n  timeout: {TIMEOUT_S}\n")
        yield root


def run_measured(*argv: str) -> tuple[int, str, str, float, float]:
    """Run the CLI as a process: (exit code, stdout, stderr, peak RSS in MB, seconds)."""
    with open(os.devnull, "rb") as stdin:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", *argv],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stdout, stderr = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    return process.returncode, stdout, stderr, usage.ru_maxrss / 1024, elapsed


@pytest.mark.parametrize("tenant", ["endless", "huge", "deep"])
def test_a_body_that_never_ends_costs_little_memory(repo: Path, tenant: str) -> None:
    code, stdout, stderr, rss_mb, elapsed = run_measured(
        "plan", str(repo), "--tenant", tenant, "--tenant", "clean", "--format", "json"
    )
    print(f"\n{tenant}: peak RSS {rss_mb:.0f} MB, {elapsed:.1f} s")
    assert code == 1, stderr
    assert rss_mb < MAX_RSS_MB
    assert elapsed < DEADLINE_S
    document = json.loads(stdout)
    errors = {t["name"]: t.get("error") for t in document["tenants"]}
    assert set(errors) == {tenant, "clean"}
    assert errors[tenant] and not errors["clean"]


def test_a_slow_server_is_cut_off_at_the_deadline(repo: Path) -> None:
    code, stdout, stderr, rss_mb, elapsed = run_measured("drift", str(repo), "--verify")
    print(f"\nslow + every hostile body, drift --verify: {elapsed:.1f} s, peak RSS {rss_mb:.0f} MB")
    assert code == 1, stderr
    assert elapsed < DEADLINE_S
    assert rss_mb < MAX_RSS_MB
    for name in NAMES:
        assert f" {name} " in stdout or f" {name}:" in stdout or f"{name} (" in stdout, name
    assert "no complete response within 1 s" in stdout
    for text in (stdout, stderr):
        assert not forged_commands(text) and not control_characters(text)
