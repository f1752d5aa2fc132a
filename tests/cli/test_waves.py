"""`apply --wave N` (or `N%`): tenants are applied N at a time; a wave with a
failure stops the rollout (exit 3) and the report says which waves ran."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.jsonschemas import schema_errors


@pytest.fixture
def six(tmp_path: Path) -> Iterator[tuple[object, Path]]:
    """A six-tenant sandbox (tenant-001 ... tenant-006) and its configuration."""
    from reconciler.sandbox import Sandbox

    with Sandbox(tenants=6, seed=11) as fleet:
        yield fleet, fleet.write_config(tmp_path / "config")


def puts(sandbox) -> set[str]:
    return {e.tenant for e in sandbox.request_log if e.method == "PUT"}


def test_a_failure_in_a_wave_stops_the_rollout(cli, six, tmp_path):
    sandbox, repo = six
    (repo / ".secrets" / "tenant-003.smtp").write_text("not-the-password\n")  # PUT refused
    report = tmp_path / "apply.json"
    result = cli("apply", str(repo), "--auto-approve", "--wave", "2", "--report", str(report))
    assert result.code == 3, result
    assert "Waves: 2 of 3 ran (2 tenant(s) each); stopped after a failure in wave 2." in (
        result.stdout
    )
    assert "tenant-005: create skipped: not started: wave 2 had a failure" in result.stdout
    # The failing tenant's wave ran whole; the next wave never started.
    assert puts(sandbox) == {"tenant-001", "tenant-002", "tenant-003", "tenant-004"}
    document = json.loads(report.read_text())
    assert schema_errors("apply-report.schema.json", document) == []
    assert document["waves"] == {"size": 2, "planned": 3, "ran": 2, "stopped": True}
    outcomes = {t["name"]: t["outcome"] for t in document["tenants"]}
    assert outcomes == {
        "tenant-001": "applied",
        "tenant-002": "applied",
        "tenant-003": "failed",
        "tenant-004": "applied",
        "tenant-005": "skipped",
        "tenant-006": "skipped",
    }
    shown = cli("show", str(report), "--format", "markdown").stdout
    assert "Waves: 2 of 3 ran (2 tenant(s) each); stopped after a failure in wave 2." in shown


def test_waves_by_percentage_run_to_the_end_when_nothing_fails(cli, six):
    sandbox, repo = six
    result = cli("apply", str(repo), "--auto-approve", "--wave", "50%")
    assert result.code == 0, result
    assert "Waves: 2 of 2 ran (3 tenant(s) each)." in result.stdout
    assert puts(sandbox) == {t.name for t in sandbox.tenants}


@pytest.mark.parametrize("value", ["0", "-1", "x", "150%", "%"])
def test_a_bad_wave_is_refused_before_anything(cli, six, value):
    sandbox, repo = six
    result = cli("apply", str(repo), "--auto-approve", "--wave", value)
    assert result.code == 1 and "--wave" in result.stderr, result
    assert sandbox.request_log == []
