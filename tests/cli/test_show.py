"""`qlik-email show FILE`: every JSON document the tool writes (a plan, an apply
report, a drift report, the applied-state record) is recognised by its `kind`
and rendered as the command that wrote it renders it."""

from __future__ import annotations

import json
from pathlib import Path


def test_show_renders_an_apply_report_as_apply_printed_it(cli, sandbox, repo, tmp_path):
    report = tmp_path / "apply.json"
    applied = cli("apply", str(repo), "--auto-approve", "--report", str(report))
    assert applied.code == 0, applied
    shown = cli("show", str(report))
    assert shown.code == 0, shown
    assert "Apply: 4 applied, 0 verify failed, 0 failed, 0 skipped, 0 unchanged." in shown.stdout
    assert shown.stdout in applied.stdout  # apply printed the plan, then this report
    markdown = cli("show", str(report), "--format", "markdown")
    assert markdown.stdout.startswith("## qlik-email apply")
    again = json.loads(cli("show", str(report), "--format", "json").stdout)
    assert again["tenants"] == json.loads(report.read_text())["tenants"]


def test_show_renders_a_drift_report(cli, sandbox, repo, tmp_path):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    sandbox.edit(sandbox.tenants[0].name, senderName="Edited by hand")
    report = tmp_path / "drift.json"
    drifted = cli("drift", str(repo), "--report", str(report))
    assert drifted.code == 2, drifted
    shown = cli("show", str(report))
    assert shown.code == 0 and shown.stdout == drifted.stdout
    markdown = cli("show", str(report), "--format", "markdown").stdout
    assert markdown.startswith("## qlik-email drift") and "Edited by hand" in markdown


def test_show_renders_the_applied_state_record(cli, sandbox, repo, tmp_path):
    state = tmp_path / "applied.json"
    assert cli("apply", str(repo), "--auto-approve", "--state", str(state)).code == 0
    shown = cli("show", str(state))
    assert shown.code == 0, shown
    name = sandbox.tenants[0].name
    assert f'"{name}" ("{sandbox.tenants[0].url}"): secret "${{file:.secrets/{name}.smtp}}"' in (
        shown.stdout
    )
    assert "Applied state: 4 tenant(s) recorded." in shown.stdout
    markdown = cli("show", str(state), "--format", "markdown").stdout
    assert markdown.startswith("## qlik-email applied state") and f"| {name} |" in markdown
    assert (
        json.loads(cli("show", str(state), "--format", "json").stdout)["tenants"]
        == (json.loads(state.read_text())["tenants"])
    )


def test_show_refuses_what_the_tool_did_not_write(cli, tmp_path: Path):
    other = tmp_path / "other.json"
    other.write_text('{"kind": "something/else"}')
    refused = cli("show", str(other))
    assert refused.code == 1 and "not a document qlik-email writes" in refused.stderr
    broken = tmp_path / "apply.json"
    broken.write_text('{"kind": "qlik-email/apply-report", "tenants": 3}')
    refused = cli("show", str(broken))
    assert refused.code == 1
    assert "an apply report this version of qlik-email cannot read" in refused.stderr
