"""`--state FILE`: a secret whose reference or rotation marker changed since the
last apply that ended `applied` is re-sent, without --rotate-secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.documents.state import load_record, save_record
from reconciler.errors import StateFileError
from reconciler.model import AppliedRecord, AppliedSecret

NEW_PASSWORD = "rotated-smtp-password-0815"


def tenant_file(repo: Path, name: str) -> Path:
    return repo / "tenants" / f"{name}.yaml"


def point_password_at(repo: Path, name: str, reference_file: str, value: str) -> str:
    """Write `value` to .secrets/`reference_file` and point `name`'s password at it."""
    secret = repo / ".secrets" / reference_file
    secret.write_text(value + "\n")
    secret.chmod(0o600)
    path = tenant_file(repo, name)
    old = f'"${{file:.secrets/{name}.smtp}}"'
    new = f'"${{file:.secrets/{reference_file}}}"'
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    return new.strip('"')


def add_line(repo: Path, name: str, after: str, line: str) -> None:
    """Insert `line` (indented like an email key) after the line starting with `after`."""
    path = tenant_file(repo, name)
    lines = path.read_text().splitlines()
    at = next(i for i, text in enumerate(lines) if text.strip().startswith(after))
    lines.insert(at + 1, f"  {line}")
    path.write_text("\n".join(lines) + "\n")


def holds(sandbox, name: str, value: str) -> bool:
    """Whether the tenant stores `value` as its secret (a bool, so that a failing
    assertion never prints a secret)."""
    provider = sandbox.live_config(name)["providerConfig"]
    return bool((provider.get("emailPassword") or provider.get("clientSecret")) == value)


def puts(sandbox) -> set[str]:
    return {e.tenant for e in sandbox.request_log if e.method == "PUT"}


@pytest.fixture
def applied(sandbox, repo, cli, tmp_path) -> Path:
    """The state file of a first apply (which re-sends every secret: none is recorded)."""
    state = tmp_path / "state" / "applied.json"
    state.parent.mkdir()
    plan = cli("plan", str(repo), "--state", str(state))
    assert "not recorded as applied yet" in plan.stdout, plan
    assert not state.exists()  # plan only reads it
    result = cli("apply", str(repo), "--auto-approve", "--state", str(state))
    assert result.code == 0, result
    assert puts(sandbox) == {t.name for t in sandbox.tenants}
    again = cli("apply", str(repo), "--auto-approve", "--state", str(state))
    assert "Nothing to apply" in again.stdout, again
    sandbox.reset_stats()
    return state


def test_apply_resends_a_secret_whose_reference_changed(sandbox, repo, cli, applied):
    name = sandbox.tenants[0].name
    old = f"${{file:.secrets/{name}.smtp}}"
    new = point_password_at(repo, name, "moved.smtp", NEW_PASSWORD)
    sandbox.set_smtp_password(name, NEW_PASSWORD)
    # Without --state nothing changes: the API never returns the secret.
    assert "No changes." in cli("plan", str(repo)).stdout
    unchanged = cli("apply", str(repo), "--auto-approve")
    assert "Nothing to apply" in unchanged.stdout
    assert not holds(sandbox, name, NEW_PASSWORD)
    plan = cli("plan", str(repo), "--state", str(applied))
    assert f"secret will be re-sent (reference changed: {old} -> {new})" in plan.stdout, plan
    assert "Plan: 0 to create, 1 to update, 0 to delete, 3 unchanged." in plan.stdout
    result = cli("apply", str(repo), "--auto-approve", "--state", str(applied))
    assert result.code == 0, result
    assert holds(sandbox, name, NEW_PASSWORD), "the new password was not sent"
    assert puts(sandbox) == {name}
    assert json.loads(applied.read_text())["tenants"][name]["secretRef"] == new
    assert "No changes." in cli("plan", str(repo), "--state", str(applied)).stdout


def test_a_failed_apply_resends_again_on_the_next_run(sandbox, repo, cli, applied):
    name = sandbox.tenants[2].name
    point_password_at(repo, name, "next.smtp", NEW_PASSWORD)
    # The SMTP server does not know the new password yet: the apply fails.
    failed = cli("apply", str(repo), "--auto-approve", "--state", str(applied))
    assert failed.code == 3, failed
    recorded = json.loads(applied.read_text())["tenants"][name]["secretRef"]
    assert recorded == f"${{file:.secrets/{name}.smtp}}"
    sandbox.set_smtp_password(name, NEW_PASSWORD)
    sandbox.reset_stats()
    fixed = cli("apply", str(repo), "--auto-approve", "--state", str(applied))
    assert fixed.code == 0, fixed
    assert puts(sandbox) == {name}
    assert holds(sandbox, name, NEW_PASSWORD), "the new password was not sent"
    assert json.loads(applied.read_text())["tenants"][name]["secretRef"] != recorded


def test_a_rotation_bump_resends_the_secret(sandbox, repo, cli, applied, tmp_path):
    smtp, m365 = sandbox.tenants[3].name, sandbox.tenants[1].name
    add_line(repo, smtp, "password:", "passwordRotation: 1")
    add_line(repo, m365, "clientSecret:", "clientSecretRotation: 2026-11-24")
    assert cli("apply", str(repo), "--auto-approve", "--state", str(applied)).code == 0
    sandbox.break_password(smtp)  # the stored secret is wrong; GET looks the same
    sandbox.reset_stats()
    path = tenant_file(repo, smtp)
    path.write_text(path.read_text().replace("passwordRotation: 1", "passwordRotation: 2"))
    plan = cli("plan", str(repo), "--state", str(applied))
    assert "secret will be re-sent (rotation 1 -> 2)" in plan.stdout, plan
    out = tmp_path / "plan.json"
    cli("plan", str(repo), "--state", str(applied), "--format", "json", "--out", str(out))
    tenants = json.loads(out.read_text())["tenants"]
    change = next(c for t in tenants if t["name"] == smtp for c in t["changes"])
    assert change["beforeRotation"] == "1" and change["afterRotation"] == "2"
    assert change["comparedWith"] == "state"
    markdown = cli("plan", str(repo), "--state", str(applied), "--format", "markdown").stdout
    assert ":warning: 1 secret(s) will be re-sent:" in markdown
    assert "rotation 1 -&gt; 2" in markdown or "rotation 1 -> 2" in markdown
    result = cli("apply", str(repo), "--auto-approve", "--state", str(applied))
    assert result.code == 0, result
    assert puts(sandbox) == {smtp}
    assert holds(sandbox, smtp, sandbox.tenant(smtp).smtp_password), "not re-sent"
    recorded = json.loads(applied.read_text())["tenants"]
    assert recorded[smtp]["rotation"] == "2"
    assert recorded[m365]["rotation"] == "2026-11-24"


def test_the_state_file_holds_no_secret_value(sandbox, repo, cli, applied):
    name = sandbox.tenants[0].name
    point_password_at(repo, name, "moved.smtp", NEW_PASSWORD)
    sandbox.set_smtp_password(name, NEW_PASSWORD)
    assert cli("apply", str(repo), "--auto-approve", "--state", str(applied)).code == 0
    text = applied.read_text()
    values = [NEW_PASSWORD]
    for t in sandbox.tenants:
        values += [t.api_key, t.smtp_password, t.m365_client_secret, t.oauth_client_secret]
    assert not [v for v in values if v and v in text]
    assert sorted(json.loads(text)["tenants"]) == sorted(t.name for t in sandbox.tenants)
    assert [p.name for p in applied.parent.iterdir()] == [applied.name]  # no temporary left


def test_an_unreadable_state_file_stops_before_any_change(sandbox, repo, cli, tmp_path):
    state = tmp_path / "applied.json"
    state.write_text('{"kind": "something else"}')
    result = cli("apply", str(repo), "--auto-approve", "--state", str(state))
    assert result.code == 1, result
    assert "not an applied-state file" in result.stderr
    assert puts(sandbox) == set()


def test_a_tenant_recorded_at_another_url_is_not_recorded(tmp_path):
    from reconciler.engine.applied import secret_moves
    from reconciler.model import ApiKeyAuth, DesiredEmail, Provider, SourcePos, TenantSpec
    from reconciler.secrets import parse_reference

    ref = parse_reference("${env:T1_SMTP}")
    email = DesiredEmail.of(Provider.BASIC_AUTH, {"serverAddress": "smtp.example"}, ref)
    assert ref is not None
    spec = TenantSpec("t1", "https://b.example", ApiKeyAuth(ref), email, SourcePos("t1.yaml"))
    path = tmp_path / "state.json"
    save_record(path, AppliedRecord({"t1": AppliedSecret("https://a.example", str(ref))}))
    record = load_record(path)
    assert secret_moves(record, [spec])["t1"].before == "(not recorded)"
    same = AppliedRecord({"t1": AppliedSecret("https://b.example", str(ref))})
    assert secret_moves(same, [spec]) == {}


def test_a_missing_state_file_is_an_empty_record(tmp_path):
    assert load_record(tmp_path / "absent.json") == AppliedRecord()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(StateFileError, match="not an applied-state file"):
        load_record(tmp_path / "bad.json")


def test_under_base_a_rotation_bump_is_a_resend(tmp_path):
    from reconciler.engine.planner import make_plan
    from reconciler.engine.trust import Judge
    from reconciler.model import (
        ApiKeyAuth,
        DesiredEmail,
        DesiredState,
        Health,
        LiveEmail,
        LiveState,
        Provider,
        SourcePos,
        TenantSpec,
    )
    from reconciler.report.plan import render_plan_text
    from reconciler.secrets import parse_reference

    ref = parse_reference("${env:T1_SMTP}")
    assert ref is not None
    fields = {"serverAddress": "smtp.example", "serverPort": 587}

    def spec(rotation: str) -> TenantSpec:
        email = DesiredEmail.of(Provider.BASIC_AUTH, fields, ref, rotation=rotation)
        return TenantSpec("t1", "https://t1.example", ApiKeyAuth(ref), email, SourcePos("t1.yaml"))

    def judged(proposed: TenantSpec, base: TenantSpec):
        judge = Judge(DesiredState(tmp_path, (base,)))
        judge.add(proposed)
        return judge.trust()

    base, proposed = spec("2"), spec("3")
    trust = judged(proposed, base)
    live_email = LiveEmail(Provider.BASIC_AUTH, tuple(sorted(fields.items())), True)
    live = {"t1": LiveState(live_email, Health(), "sha256:x")}
    plan = make_plan([proposed], live, trust=trust)
    assert plan.has_changes
    text = render_plan_text(plan)
    assert "secret will be re-sent (rotation 2 -> 3), sent to smtp.example:587" in text
    assert not make_plan([base], live, trust=judged(base, base)).has_changes
