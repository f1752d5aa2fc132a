"""apply against the sandbox, over real HTTP and real SMTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from reconciler.jsonschemas import load_schema

pytestmark = pytest.mark.slow


def tenant_file(repo: Path, name: str) -> Path:
    return repo / "tenants" / f"{name}.yaml"


def edit_tenant(repo: Path, name: str, **email: object) -> None:
    path = tenant_file(repo, name)
    data = yaml.safe_load(path.read_text())
    if email.pop("absent", False):
        data["email"] = "absent"
    else:
        data["email"].update(email)
        data["email"] = {k: v for k, v in data["email"].items() if v is not None}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def write_secret(repo: Path, name: str, value: str) -> None:
    (repo / ".secrets" / f"{name}.smtp").write_text(value + "\n")


def test_apply_creates_every_tenant_then_plan_is_clean(sandbox, repo, cli):
    assert cli("plan", str(repo), "--detailed-exitcode").code == 2
    result = cli("apply", str(repo), "--auto-approve")
    assert result.code == 0, result
    assert "Apply: 4 applied, 0 verify failed, 0 failed, 0 skipped, 0 unchanged." in result.stdout
    again = cli("plan", str(repo), "--detailed-exitcode")
    assert again.code == 0, again
    assert "No changes." in again.stdout
    stored = sandbox.live_config("tenant-001")
    assert stored["providerConfig"]["emailPassword"] == sandbox.tenant("tenant-001").smtp_password


def test_update_and_noop(sandbox, repo, cli):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    edit_tenant(repo, "tenant-003", senderName="Renamed Sender")
    plan = cli("plan", str(repo))
    assert (
        '~ senderName = "Tenant 003" -> "Renamed Sender"' in plan.stdout
        or "Renamed Sender" in plan.stdout
    )
    assert "Plan: 0 to create, 1 to update, 0 to delete, 3 unchanged." in plan.stdout
    result = cli("apply", str(repo), "--auto-approve")
    assert result.code == 0, result
    assert "Apply: 1 applied" in result.stdout
    assert sandbox.live_config("tenant-003")["providerConfig"]["senderName"] == "Renamed Sender"


def test_provider_switch_replaces_config(sandbox, repo, cli):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    t = sandbox.tenant("tenant-004")
    (repo / ".secrets" / "tenant-004.m365").write_text(t.m365_client_secret)
    path = tenant_file(repo, "tenant-004")
    data = yaml.safe_load(path.read_text())
    data["email"] = {
        "provider": "Microsoft365",
        "clientId": t.m365_client_id,
        "clientSecret": "${file:.secrets/tenant-004.m365}",
        "providerTenantId": t.m365_provider_tenant_id,
        "emailAddress": "qlik@tenant-004.example",
    }
    path.write_text(yaml.safe_dump(data))
    plan = cli("plan", str(repo))
    assert '-/+ tenant "tenant-004"' in plan.stdout
    assert "provider BasicAuth -> Microsoft365" in plan.stdout
    result = cli("apply", str(repo), "--auto-approve")
    assert result.code == 0, result
    assert sandbox.live_config("tenant-004")["serviceProvider"] == "Microsoft365"
    assert cli("plan", str(repo), "--detailed-exitcode").code == 0


def test_delete_needs_allow_delete_and_is_idempotent(sandbox, repo, cli):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    edit_tenant(repo, "tenant-001", absent=True)
    refused = cli("apply", str(repo), "--auto-approve")
    assert refused.code == 1
    assert "--allow-delete" in refused.stderr
    assert sandbox.live_config("tenant-001") is not None
    result = cli("apply", str(repo), "--auto-approve", "--allow-delete")
    assert result.code == 0, result
    assert sandbox.live_config("tenant-001") is None
    again = cli("apply", str(repo), "--auto-approve", "--allow-delete")
    assert again.code == 0
    assert "Nothing to apply" in again.stdout


def test_wrong_password_fails_only_that_tenant_and_rerun_converges(sandbox, repo, cli):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    before = sandbox.live_config("tenant-001")
    edit_tenant(repo, "tenant-001", senderName="New Name")
    edit_tenant(repo, "tenant-003", senderName="Also New")
    write_secret(repo, "tenant-001", "not-the-password")
    result = cli("apply", str(repo), "--auto-approve")
    assert result.code == 3, result
    assert "tenant-001: update failed" in result.stdout
    assert "400" in result.stdout
    assert "Apply: 1 applied, 0 verify failed, 1 failed" in result.stdout
    assert sandbox.live_config("tenant-001") == before  # the previous config is untouched
    assert sandbox.live_config("tenant-003")["providerConfig"]["senderName"] == "Also New"
    assert "not-the-password" not in result.stdout + result.stderr
    write_secret(repo, "tenant-001", sandbox.tenant("tenant-001").smtp_password)
    fixed = cli("apply", str(repo), "--auto-approve")
    assert fixed.code == 0, fixed
    assert cli("plan", str(repo), "--detailed-exitcode").code == 0


def test_stale_saved_plan_is_refused_for_the_changed_tenant_only(sandbox, repo, cli, tmp_path):
    plan_file = tmp_path / "plan.json"
    planned = cli("plan", str(repo), "--out", str(plan_file))
    assert planned.code == 0
    document = json.loads(plan_file.read_text())
    jsonschema.Draft202012Validator(load_schema("plan.schema.json")).validate(document)
    sandbox.seed_legacy(
        "tenant-003",
        {
            "serverAddress": "10.9.9.9",
            "serverPort": 25,
            "securityType": "none",
            "username": "x",
            "emailAddress": "x@y.example",
        },
    )
    result = cli("apply", str(plan_file), "--config", str(repo))
    assert result.code == 3, result
    assert (
        "tenant-003: create skipped: its live configuration changed since the plan" in result.stdout
    )
    assert "Apply: 3 applied" in result.stdout
    assert sandbox.live_config("tenant-003").get("serverAddress") == "10.9.9.9"


def test_saved_plan_refuses_tenant_whose_config_changed(sandbox, repo, cli, tmp_path):
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(repo), "--out", str(plan_file)).code == 0
    edit_tenant(repo, "tenant-001", senderName="Edited After Plan")
    result = cli("apply", str(plan_file), "--config", str(repo))
    assert result.code == 3
    assert "tenant-001: create skipped: its configuration changed since the plan" in result.stdout


def test_thresholds_refuse_without_force(sandbox, repo, cli):
    root = repo / "qlik-email.yaml"
    data = yaml.safe_load(root.read_text())
    data.setdefault("settings", {})["safety"] = {"maxChanges": 2}
    root.write_text(yaml.safe_dump(data))
    refused = cli("apply", str(repo), "--auto-approve")
    assert refused.code == 1
    assert "more than maxChanges 2" in refused.stderr
    assert all(sandbox.live_config(t.name) is None for t in sandbox.tenants)
    assert cli("apply", str(repo), "--auto-approve", "--force").code == 0


def test_rotate_secrets_resends_unchanged_secret(sandbox, repo, cli):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    sandbox.set_smtp_password("tenant-001", "rotated-Pa55word")
    write_secret(repo, "tenant-001", "rotated-Pa55word")
    assert cli("plan", str(repo), "--detailed-exitcode").code == 0  # secrets are write-only
    result = cli("apply", str(repo), "--auto-approve", "--rotate-secrets", "--tenant", "tenant-001")
    assert result.code == 0, result
    assert "Apply: 1 applied" in result.stdout
    assert (
        sandbox.live_config("tenant-001")["providerConfig"]["emailPassword"] == "rotated-Pa55word"
    )


def test_apply_report_json_validates(sandbox, repo, cli, tmp_path):
    report = tmp_path / "report.json"
    result = cli("apply", str(repo), "--auto-approve", "--format", "json", "--report", str(report))
    assert result.code == 0
    document = json.loads(report.read_text())
    jsonschema.Draft202012Validator(load_schema("apply-report.schema.json")).validate(document)
    assert json.loads(result.stdout)["summary"]["applied"] == 4


def test_test_email_is_delivered_once_per_tenant(sandbox, repo, cli):
    result = cli("apply", str(repo), "--auto-approve", "--test-email", "ops@example.com")
    assert result.code == 0, result
    delivered = [m for m in sandbox.mailbox if "ops@example.com" in m.recipients]
    basic_tenants = (
        3  # tenant-002 is on Microsoft 365: its mail does not reach the local SMTP server
    )
    assert len(delivered) >= basic_tenants


def test_verify_failing_after_a_successful_put_is_reported(sandbox, repo, cli):
    # The SMTP account accepts exactly one more login (the PUT's own check),
    # then its password stops working: verify-connection right after fails.
    sandbox.expire_smtp_password_after("tenant-001", logins=1)
    result = cli("apply", str(repo), "--auto-approve")
    assert result.code == 3, result
    expected = "tenant-001: create verify-failed: saved, but verify-connection failed: 535"
    assert expected in result.stdout
    assert "Apply: 3 applied, 1 verify failed, 0 failed" in result.stdout
    assert sandbox.live_config("tenant-001") is not None  # the PUT itself went through


def test_an_unresolvable_secret_stops_apply_before_any_tenant_is_touched(cli, sandbox, repo):
    (repo / ".secrets" / "tenant-003.smtp").unlink()
    sandbox.reset_stats()
    checked = cli("validate", str(repo), "--secrets")
    assert checked.code == 1
    assert "1 secret reference(s) cannot be resolved:" in checked.stderr, checked
    assert "changed" not in checked.stderr  # validate never changes anything
    position = re.search(r"tenants/tenant-003\.yaml:(\d+):(\d+): ", checked.stderr)
    assert position, checked.stderr
    line = (repo / "tenants" / "tenant-003.yaml").read_text().splitlines()[int(position[1]) - 1]
    assert line.lstrip().startswith("password:")  # the reference's own line
    result = cli("apply", str(repo), "--auto-approve")
    assert result.code == 1
    assert position[0] in result.stderr and "nothing was changed" in result.stderr
    assert sandbox.request_log == []  # not even read
    assert all(sandbox.live_config(t.name) is None for t in sandbox.tenants)
    assert cli("validate", str(repo)).code == 0  # without --secrets, nothing is resolved


def test_a_saved_plan_applies_only_to_the_repository_it_was_made_from(
    cli, sandbox, repo, tmp_path, monkeypatch
):
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(repo), "--out", str(plan_file)).code == 0
    # Another directory, whose configuration would run a command: never followed.
    elsewhere = tmp_path / "elsewhere"
    sandbox.write_config(elsewhere)
    marker = tmp_path / "ran"
    path = elsewhere / "tenants" / "tenant-001.yaml"
    data = yaml.safe_load(path.read_text())
    data["auth"] = {"apiKey": f"${{cmd:touch {marker}}}"}
    path.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(elsewhere)
    sandbox.reset_stats()
    refused = cli("apply", str(plan_file))
    assert refused.code == 1 and "applies only to the repository it was made from" in refused.stderr
    assert not marker.exists() and sandbox.request_log == []
    moved = cli("apply", str(plan_file), "--config", str(elsewhere))
    assert moved.code == 1 and not marker.exists()
    monkeypatch.chdir(repo)  # run where it was made: applied
    assert cli("apply", str(plan_file)).code == 0
