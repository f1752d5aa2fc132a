"""settings.deadline against the sandbox: each tenant's read and each tenant's
write (with its verify and read-back) ends within its deadline, and only that
tenant fails."""

from __future__ import annotations

import json
import time
from pathlib import Path


def set_deadlines(repo: Path, read: float, write: float) -> None:
    root = repo / "qlik-email.yaml"
    text = root.read_text()
    assert "settings:\n" in text
    deadline = f"  deadline: {{read: {read}, write: {write}}}\n"
    root.write_text(text.replace("settings:\n", "settings:\n" + deadline, 1))


def test_a_slow_tenant_is_cut_off_at_the_read_deadline(sandbox, repo, cli):
    set_deadlines(repo, read=0.5, write=5)
    sandbox.faults.set(latency_ms=3000, tenant="tenant-001")
    started = time.monotonic()
    result = cli("plan", str(repo), "--format", "json")
    assert time.monotonic() - started < 2.5
    assert result.code == 1, result
    errors = {t["name"]: t.get("error") for t in json.loads(result.stdout)["tenants"]}
    assert errors.pop("tenant-001") == (
        "reading tenant-001 did not finish within the deadline of 0.5 s (settings.deadline.read)"
    )
    assert set(errors.values()) == {None}


def test_a_write_is_cut_off_at_the_write_deadline(sandbox, repo, cli, tmp_path):
    set_deadlines(repo, read=10, write=1.5)
    saved = tmp_path / "plan.json"
    assert cli("plan", str(repo), "--out", str(saved)).code == 0
    sandbox.faults.set(latency_ms=5000, tenant="tenant-002")
    started = time.monotonic()
    report_file = str(tmp_path / "r.json")
    result = cli(
        "apply", str(saved), "--config", str(repo), "--auto-approve", "--report", report_file
    )
    assert time.monotonic() - started < 4, result
    assert result.code != 0, result
    report = json.loads((tmp_path / "r.json").read_text())
    outcomes = {t["name"]: (t["outcome"], t["message"]) for t in report["tenants"]}
    assert outcomes.pop("tenant-002") == (
        "failed",
        "applying to tenant-002 did not finish within the deadline of 1.5 s "
        "(settings.deadline.write); whether its change took effect is unknown (a plan shows it)",
    )
    assert {outcome for outcome, _ in outcomes.values()} == {"applied"}


def test_a_retry_after_past_the_write_deadline_fails_that_tenant_at_once(
    sandbox, repo, cli, tmp_path
):
    set_deadlines(repo, read=10, write=20)
    saved = tmp_path / "plan.json"
    assert cli("plan", str(repo), "--out", str(saved)).code == 0
    sandbox.faults.set(hostile=("retry-after-forever",), tenant="tenant-003")
    started = time.monotonic()
    report_file = str(tmp_path / "r.json")
    result = cli(
        "apply", str(saved), "--config", str(repo), "--auto-approve", "--report", report_file
    )
    assert time.monotonic() - started < 5
    report = json.loads((tmp_path / "r.json").read_text())
    outcome = next(t for t in report["tenants"] if t["name"] == "tenant-003")
    assert outcome["outcome"] == "failed", result
    assert "Retry-After 30 s, more than the" in outcome["message"]
    assert "deadline of 20 s (settings.deadline.write)" in outcome["message"]
