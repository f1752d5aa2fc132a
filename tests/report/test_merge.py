"""`report merge`: the reports of N shards merge into the report one unsharded
run would have written, and reports that cannot be merged are refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from reconciler.documents.plan import plan_document
from reconciler.errors import ReportFileError
from reconciler.model import Action, Plan, TenantPlan
from reconciler.report.merge import Source, merge_reports, shard_problem
from reconciler.sandbox import Sandbox


@pytest.fixture(scope="module")
def fleet() -> Iterator[Sandbox]:
    """Twelve tenants, shared by the tests that do not change their state."""
    with Sandbox(tenants=12, seed=11) as sb:
        yield sb


# --- sharding through report merge ---------------------------------------------------------


def _shard_reports(tmp_path: Path, command: list[str], count: int, flag: str) -> list[str]:
    files = []
    for index in range(1, count + 1):
        path = tmp_path / f"{command[0]}-{index}.json"
        result = run_cli(*command, "--shard", f"{index}/{count}", flag, str(path))
        assert result.code in (0, 2, 3), result
        files.append(str(path))
    return files


def _without_time(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "createdAt"}


def test_sharded_plans_merge_into_the_unsharded_plan(fleet: Sandbox, tmp_path: Path) -> None:
    root = fleet.write_config(tmp_path / "config")
    files = _shard_reports(tmp_path, ["plan", str(root)], 3, "--out")
    names = [[t["name"] for t in json.loads(Path(f).read_text())["tenants"]] for f in files]
    assert all(names)  # every shard has tenants
    everyone = [n for shard in names for n in shard]
    assert sorted(everyone) == sorted(t.name for t in fleet.tenants)  # complete, disjoint
    again = _shard_reports(tmp_path / "again", ["plan", str(root)], 3, "--out")
    assert [json.loads(Path(f).read_text())["tenants"] for f in again] == [
        json.loads(Path(f).read_text())["tenants"] for f in files
    ]  # stable

    whole = tmp_path / "whole.json"
    assert run_cli("plan", str(root), "--out", str(whole)).code == 0
    merged = tmp_path / "merged.json"
    result = run_cli("report", "merge", *files, "--out", str(merged), "--detailed-exitcode")
    assert result.code == 2, result  # fresh tenants: every one is a create
    assert "Plan: 12 to create, 0 to update, 0 to delete, 0 unchanged." in result.stdout
    expected = _without_time(json.loads(whole.read_text()))
    assert _without_time(json.loads(merged.read_text())) == {**expected, "shard": None}
    assert run_cli("report", "merge", *files).code == 0  # no --detailed-exitcode


def test_sharded_apply_and_drift_reports_merge(tmp_path: Path) -> None:
    with Sandbox(tenants=9, seed=12) as sb:
        root = sb.write_config(tmp_path / "config")
        applied = _shard_reports(tmp_path, ["apply", str(root), "--auto-approve"], 2, "--report")
        result = run_cli("report", "merge", *applied, "--format", "json")
        assert result.code == 0, result
        document = json.loads(result.stdout)
        assert document["summary"]["applied"] == 9 and document["shard"] is None

        sb.edit("tenant-002", senderName="Edited")
        sb.edit("tenant-007", authFailures=3)
        drifts = _shard_reports(tmp_path, ["drift", str(root)], 2, "--report")
        whole = tmp_path / "drift.json"
        assert run_cli("drift", str(root), "--report", str(whole)).code == 2
        merged = run_cli("report", "merge", *drifts, "--format", "json")
        assert merged.code == 2, merged
        document = json.loads(merged.stdout)
        unsharded = json.loads(whole.read_text())
        assert document["fingerprint"] == unsharded["fingerprint"]
        assert document["summary"] == unsharded["summary"]
        shard_prints = {json.loads(Path(f).read_text())["fingerprint"] for f in drifts}
        assert unsharded["fingerprint"] not in shard_prints
        text = run_cli("report", "merge", *drifts).stdout
        assert f"Fingerprint: {unsharded['fingerprint']}" in text
        assert "Drift: 1 drifted, 1 unhealthy, 0 unreadable, 7 clean." in text
        # The fleet views of the merged report are those of the unsharded run.
        table = run_cli("drift", str(root), "--format", "csv")
        assert table.code == 2 and table.stdout.count("\r\n") == 10, table
        page = tmp_path / "fleet.html"
        views = run_cli("report", "merge", *drifts, "--format", "csv", "--html", str(page))
        assert views.code == 2 and views.stdout == table.stdout, views
        assert page.read_text().count('<tr data-status="') == 9


def _plan_doc(*names: str, shard: str | None = None, error: str | None = None) -> dict[str, Any]:
    tenants = tuple(
        TenantPlan(
            tenant=name,
            url=f"https://{name}.eu.qlikcloud.com",
            action=Action.NOOP,
            live_fingerprint="sha256:0",
            desired_fingerprint="sha256:1",
            error=error,
        )
        for name in names
    )
    return plan_document(Plan(tenants, shard=shard))


def _write(tmp_path: Path, name: str, document: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return str(path)


def test_fleet_views_are_for_drift_reports_only(tmp_path: Path) -> None:
    plans = [_write(tmp_path, f"p{i}.json", _plan_doc(f"t{i}", shard=f"{i}/2")) for i in (1, 2)]
    out = tmp_path / "merged.json"
    for option in (["--format", "html"], ["--csv", str(tmp_path / "t.csv")]):
        result = run_cli("report", "merge", *plans, "--out", str(out), *option)
        assert result.code == 1, result
        assert "are for drift reports only" in result.stderr
    assert not out.exists() and not (tmp_path / "t.csv").exists()  # nothing written


def test_merge_refuses_mixed_kinds(tmp_path: Path) -> None:
    from reconciler.documents.drift import drift_document
    from reconciler.engine.drift import DriftReport

    plan = _write(tmp_path, "plan.json", _plan_doc("a"))
    drift = _write(tmp_path, "drift.json", drift_document(DriftReport((), "sha256:x")))
    result = run_cli("report", "merge", plan, drift)
    assert result.code == 1
    assert "cannot merge reports of different kinds" in result.stderr
    assert f"{plan}: plan" in result.stderr and f"{drift}: drift" in result.stderr


def test_merge_refuses_overlapping_tenants(tmp_path: Path) -> None:
    one = _write(tmp_path, "one.json", _plan_doc("a", "b"))
    two = _write(tmp_path, "two.json", _plan_doc("b", "c"))
    result = run_cli("report", "merge", one, two)
    assert result.code == 1
    assert f"the reports overlap: 1 tenant(s) appear twice: b (in {one} and {two})" in (
        result.stderr
    )
    assert "given more than once" in run_cli("report", "merge", one, one).stderr


def test_merge_refuses_a_missing_shard_unless_partial(tmp_path: Path) -> None:
    one = _write(tmp_path, "1.json", _plan_doc("a", shard="1/3"))
    three = _write(tmp_path, "3.json", _plan_doc("c", shard="3/3"))
    refused = run_cli("report", "merge", one, three)
    assert refused.code == 1 and "shard 2/3 is missing" in refused.stderr
    partial = run_cli("report", "merge", one, three, "--partial")
    assert partial.code == 0, partial
    assert "Warning: shard 2/3 is missing" in partial.stderr
    assert "0 unchanged" not in partial.stdout and "2 unchanged" in partial.stdout


def test_merge_refuses_unreadable_and_foreign_files(tmp_path: Path) -> None:
    cases = {
        "missing.json": None,
        "broken.json": "{not json",
        "other.json": {"kind": "something-else"},
        "list.json": [1, 2],
        "invalid.json": {**_plan_doc("a"), "summary": {"create": -1}},
    }
    for name, content in cases.items():
        path = str(tmp_path / name) if content is None else _write(tmp_path, name, content)
        result = run_cli("report", "merge", path)
        assert result.code == 1, (name, result)
        assert result.stderr.startswith(f"Error: {path}: "), (name, result.stderr)
    assert "not a qlik-email plan, apply or drift report" in (
        run_cli("report", "merge", str(tmp_path / "other.json")).stderr
    )
    assert "not a plan report this version of qlik-email can read" in (
        run_cli("report", "merge", str(tmp_path / "invalid.json")).stderr
    )


def test_merge_exit_codes_follow_the_commands(tmp_path: Path) -> None:
    from reconciler.documents.apply import apply_document
    from reconciler.engine.applier import ApplyReport, Outcome, TenantResult

    unreadable = _write(tmp_path, "err.json", _plan_doc("a", error="tenant a: 401"))
    result = run_cli("report", "merge", unreadable)
    assert result.code == 1 and "1 tenant(s) could not be read" in result.stderr

    def applied(name: str, outcome: Outcome) -> str:
        report = ApplyReport((TenantResult(name, "https://x", Action.UPDATE, outcome),))
        return _write(tmp_path, f"{name}.json", apply_document(report))

    ok = applied("a", Outcome.APPLIED)
    assert run_cli("report", "merge", ok).code == 0
    assert run_cli("report", "merge", ok, applied("b", Outcome.VERIFY_FAILED)).code == 3


def test_shard_problem_names_missing_and_mixed_shards() -> None:
    assert shard_problem([]) is None
    assert shard_problem(["1/2", "2/2"]) is None
    assert shard_problem(["2/4"]) == "shard 1/4, 3/4, 4/4 are missing"
    assert (
        shard_problem(["1/2", "2/3"]) == "the reports come from different shard counts (1/2, 2/3)"
    )


def test_merge_keeps_the_config_root_only_when_every_shard_agrees() -> None:
    a, b = _plan_doc("a", shard="1/2"), _plan_doc("b", shard="2/2")
    same = merge_reports(
        [Source("a", {**a, "configRoot": "/r"}), Source("b", {**b, "configRoot": "/r"})]
    )
    assert same.document["configRoot"] == "/r" and same.shards == ("1/2", "2/2")
    differ = merge_reports(
        [Source("a", {**a, "configRoot": "/r"}), Source("b", {**b, "configRoot": "/s"})]
    )
    assert "configRoot" not in differ.document
    with pytest.raises(ReportFileError, match="no report"):
        merge_reports([])
