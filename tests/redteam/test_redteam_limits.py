"""Every limit holds end to end, measured on the CLI as a process of its own:
memory against endless and huge bodies, time against a server that sends one
byte a second, and one hostile tenant never sinks the others' run.

`pytest -s -m slow tests/redteam/test_redteam_limits.py` prints the figures
docs/security.md quotes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
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
        root_file = root / "qlik-email.yaml"  # the sandbox's root file has a settings block
        text = root_file.read_text().replace(
            "settings:\n", f"settings:\n  timeout: {TIMEOUT_S}\n", 1
        )
        root_file.write_text(text)
        yield root


# Linux counts a child's peak RSS from its parent's at fork time (the pytest
# process, hundreds of MB): a small launcher process of its own runs the CLI
# and reports the peak of that child alone.
LAUNCHER = """
import resource, subprocess, sys, time
started = time.monotonic()
code = subprocess.call([sys.executable, "-m", "reconciler", *sys.argv[2:]])
elapsed = time.monotonic() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as handle:
    handle.write(f"{code} {peak} {elapsed}")
"""


def run_measured(*argv: str) -> tuple[int, str, str, float, float]:
    """Run the CLI as a process: (exit code, stdout, stderr, peak RSS in MB, seconds)."""
    with tempfile.TemporaryDirectory() as directory:
        figures = Path(directory) / "figures"
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(figures), *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        code, peak_kb, elapsed = figures.read_text().split()
    return int(code), done.stdout, done.stderr, int(peak_kb) / 1024, float(elapsed)


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
