"""SIGINT and SIGTERM during apply: no new tenant starts, those in flight finish,
the report says what was done, and a re-run converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from reconciler.sandbox import Sandbox

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_apply_reports_and_rerun_converges(tmp_path, cli, signum, code):
    with Sandbox(tenants=30, seed=3) as sandbox:
        repo = sandbox.write_config(tmp_path / "config")
        sandbox.faults.set(latency_ms=60)
        report = tmp_path / "report.json"
        argv = [
            sys.executable,
            "-m",
            "reconciler",
            "apply",
            str(repo),
            "--auto-approve",
            "--concurrency",
            "2",
            "--progress",
            "--report",
            str(report),
        ]
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the first tenant is done
            line = process.stderr.readline()
            if "Applying: [1/30]" in line or not line:
                break
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == code, stderr
        assert f"Received {signal.Signals(signum).name}" in stderr
        document = json.loads(report.read_text())
        assert document["interrupted"] is True
        outcomes = {t["name"]: t["outcome"] for t in document["tenants"]}
        applied = {name for name, outcome in outcomes.items() if outcome == "applied"}
        skipped = {name for name, outcome in outcomes.items() if outcome == "skipped"}
        assert applied and skipped and applied | skipped == set(outcomes)
        # Every tenant that was changed is reported as applied: nothing half-done went unreported.
        changed = {t.name for t in sandbox.tenants if sandbox.live_config(t.name) is not None}
        assert changed == applied
        sandbox.faults.clear()
        rerun = cli("apply", str(repo), "--auto-approve")
        assert rerun.code == 0, rerun
        assert f"Apply: {len(skipped)} applied" in rerun.stdout
        assert cli("plan", str(repo), "--detailed-exitcode").code == 0
