"""`paused: {reason, until}` in a tenant file: the tenant is not contacted by
plan, apply or drift, every report lists it with its reason, and it counts as
neither a failure nor drift; once `until` has passed, validate warns and the
tenant is contacted again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.jsonschemas import schema_errors

REASON = "API key expired, renewal in OPS-77"


def pause(repo: Path, name: str, until: str | None = None) -> None:
    """Add a `paused:` mapping to `name`'s tenant file."""
    path = repo / "tenants" / f"{name}.yaml"
    block = f'paused:\n  reason: "{REASON}"\n' + (f"  until: {until}\n" if until else "")
    path.write_text(path.read_text() + block)


def expire_api_key(repo: Path, name: str) -> None:
    """The tenant's API key no longer works (the sandbox answers 401)."""
    (repo / ".secrets" / f"{name}.apikey").write_text("expired-key-0000\n")


def contacted(sandbox, name: str) -> bool:
    return any(entry.tenant == name for entry in sandbox.request_log)


@pytest.fixture
def paused_repo(sandbox, repo) -> tuple[Path, str]:
    """A repository whose first tenant's API key expired and which is paused."""
    name = sandbox.tenants[0].name
    expire_api_key(repo, name)
    pause(repo, name)
    return repo, name


def test_an_expired_key_fails_plan_until_the_tenant_is_paused(cli, sandbox, repo):
    name = sandbox.tenants[0].name
    expire_api_key(repo, name)
    failed = cli("plan", str(repo))
    assert failed.code == 1 and "could not be read" in failed.stdout, failed
    pause(repo, name)
    sandbox.reset_stats()
    result = cli("plan", str(repo))
    assert result.code == 0, result
    assert f"|| {name} (" in result.stdout and f"paused: {REASON}" in result.stdout
    assert "1 tenant(s) paused: not contacted, nothing planned." in result.stdout
    assert "could not be read" not in result.stdout
    assert not contacted(sandbox, name)
    assert contacted(sandbox, sandbox.tenants[1].name)


def test_plan_lists_the_paused_tenant_in_json_and_markdown(cli, sandbox, paused_repo):
    repo, name = paused_repo
    document = json.loads(cli("plan", str(repo), "--format", "json").stdout)
    assert schema_errors("plan.schema.json", document) == []
    assert document["summary"]["paused"] == 1
    assert document["summary"]["errors"] == 0
    entry = next(t for t in document["tenants"] if t["name"] == name)
    assert entry["paused"] == REASON and entry["changes"] == []
    markdown = cli("plan", str(repo), "--format", "markdown").stdout
    assert ":pause_button: 1 tenant(s) paused" in markdown
    assert f"{name}: {REASON}" in markdown


def test_drift_is_clean_with_a_paused_tenant_and_lists_it(cli, sandbox, paused_repo, tmp_path):
    repo, name = paused_repo
    assert cli("apply", str(repo), "--auto-approve").code == 0
    sandbox.reset_stats()
    report = tmp_path / "drift.json"
    result = cli("drift", str(repo), "--report", str(report))
    assert result.code == 0, result
    assert f"paused: {REASON}" in result.stdout and "1 paused" in result.stdout
    document = json.loads(report.read_text())
    assert schema_errors("drift-report.schema.json", document) == []
    assert document["clean"] is True and document["summary"]["paused"] == 1
    entry = next(t for t in document["tenants"] if t["name"] == name)
    assert entry["status"] == "paused" and entry["paused"] == REASON
    markdown = cli("drift", str(repo), "--format", "markdown").stdout
    assert f"{name}: {REASON}" in markdown
    assert not contacted(sandbox, name)


def test_apply_leaves_a_paused_tenant_alone_and_reports_it(cli, sandbox, paused_repo, tmp_path):
    repo, name = paused_repo
    sandbox.reset_stats()
    report = tmp_path / "apply.json"
    result = cli("apply", str(repo), "--auto-approve", "--report", str(report))
    assert result.code == 0, result
    assert f"|| {name} (" in result.stdout and "1 paused (not contacted)" in result.stdout
    document = json.loads(report.read_text())
    assert schema_errors("apply-report.schema.json", document) == []
    assert document["summary"]["paused"] == 1
    entry = next(t for t in document["tenants"] if t["name"] == name)
    assert entry["outcome"] == "paused" and entry["message"] == REASON
    assert not contacted(sandbox, name)
    markdown = cli("apply", str(repo), "--auto-approve", "--format", "markdown").stdout
    assert f"| :pause_button: | {name} |" in markdown


def test_a_tenant_paused_after_a_saved_plan_is_not_applied(cli, sandbox, repo, tmp_path):
    name = sandbox.tenants[0].name
    saved = tmp_path / "plan.json"
    assert cli("plan", str(repo), "--out", str(saved)).code == 0
    pause(repo, name)
    sandbox.reset_stats()
    result = cli("apply", str(saved), "--config", str(repo))
    assert result.code == 0, result
    assert f"paused: {REASON}" in result.stdout
    assert not contacted(sandbox, name)
    assert sandbox.live_config(name) is None
    assert sandbox.live_config(sandbox.tenants[1].name) is not None


def test_after_until_validate_warns_and_the_tenant_is_contacted_again(
    cli, sandbox, repo, monkeypatch
):
    name = sandbox.tenants[0].name
    pause(repo, name, until="2026-12-31")
    monkeypatch.setenv("QLIK_EMAIL_TODAY", "2026-12-31")  # the last paused day
    quiet = cli("validate", str(repo))
    assert quiet.code == 0 and "paused" not in quiet.stderr, quiet
    sandbox.reset_stats()
    assert "(until 2026-12-31)" in cli("plan", str(repo)).stdout
    assert not contacted(sandbox, name)
    monkeypatch.setenv("QLIK_EMAIL_TODAY", "2027-01-01")
    warned = cli("validate", str(repo))
    assert warned.code == 0, warned
    assert f"tenants/{name}.yaml:" in warned.stderr
    assert "is paused until 2026-12-31, which has passed: the tenant is contacted again" in (
        warned.stderr
    )
    result = cli("plan", str(repo))
    assert result.code == 0 and "paused" not in result.stdout, result
    assert contacted(sandbox, name)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("paused:\n  until: 2026-12-31\n", "missing required key 'reason' in paused"),
        ('paused:\n  reason: "  "\n', "paused.reason must not be empty: say why the tenant is"),
        ("paused:\n  reason: x\n  until: 2026-13-01\n", "paused.until '2026-13-01' is not a valid"),
        ("paused:\n  reason: x\n  untl: 2026-12-01\n", "unknown key 'untl' in paused"),
        ("paused: yes\n", "paused must be a mapping"),
    ],
)
def test_a_bad_pause_is_refused_at_its_line(cli, sandbox, repo, block, message):
    name = sandbox.tenants[0].name
    path = repo / "tenants" / f"{name}.yaml"
    path.write_text(path.read_text() + block)
    result = cli("validate", str(repo))
    assert result.code == 1, result
    assert f"tenants/{name}.yaml:" in result.stderr and message in result.stderr, result


def test_a_paused_tenant_s_missing_secret_does_not_stop_apply(cli, sandbox, repo):
    name = sandbox.tenants[0].name
    (repo / ".secrets" / f"{name}.smtp").unlink()
    refused = cli("apply", str(repo), "--auto-approve")
    assert refused.code == 1 and "cannot be resolved" in refused.stderr
    pause(repo, name)
    result = cli("apply", str(repo), "--auto-approve")
    assert result.code == 0, result
    assert sandbox.live_config(name) is None


def test_a_hostile_reason_is_shown_inert_in_every_format(cli, sandbox, repo):
    name = sandbox.tenants[0].name
    path = repo / "tenants" / f"{name}.yaml"
    path.write_text(
        path.read_text() + 'paused:\n  reason: "x \\e[2J \\u202e ::error::forged @octocat <b>"\n'
    )
    text = cli("plan", str(repo))
    assert text.code == 0, text
    assert "\x1b" not in text.stdout and "\u202e" not in text.stdout
    assert "\\x1b[2J" in text.stdout and "\\u202e" in text.stdout
    markdown = cli("plan", str(repo), "--format", "markdown").stdout
    assert "<b>" not in markdown and "`@octocat`" in markdown
