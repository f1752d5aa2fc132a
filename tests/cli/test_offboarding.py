"""Offboarding: under `--base`, a tenant file the pull request removes is named
in the plan (no longer managed, left as it is) in every format."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.jsonschemas import schema_errors

GIT = ["git", "-c", "user.name=Base", "-c", "user.email=base@example.invalid"]
NOTE = "no longer managed: left as it is; set `email: absent` to delete its configuration"


def git(repo: Path, *args: str) -> None:
    done = subprocess.run([*GIT, "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def removed(sandbox, repo: Path) -> tuple[Path, str, str]:
    """The fleet applied and committed as the base; the pull request deletes the
    first tenant's file. Returns the repository, the tenant and its URL."""
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    tenant = sandbox.tenants[0]
    (repo / "tenants" / f"{tenant.name}.yaml").unlink()
    return repo, tenant.name, tenant.url


def test_a_removed_tenant_file_is_named_in_every_format(cli, sandbox, removed):
    repo, name, url = removed
    text = cli("plan", str(repo), "--base", "main")
    assert text.code == 0, text
    assert f"?? {name} ({url}): {NOTE}" in text.stdout
    result = cli("plan", str(repo), "--base", "main", "--format", "json")
    document = json.loads(result.stdout)
    assert schema_errors("plan.schema.json", document) == []
    assert document["noLongerManaged"] == [{"name": name, "url": url, "note": NOTE}]
    assert document["summary"]["noLongerManaged"] == 1
    assert name not in [t["name"] for t in document["tenants"]]
    markdown = cli("plan", str(repo), "--base", "main", "--format", "markdown").stdout
    assert ":wave: 1 tenant(s) whose file this change removes:" in markdown
    assert f"- {name} ({url}): {NOTE}" in markdown
    assert not any(entry.tenant == name for entry in sandbox.request_log)


def test_a_saved_plan_and_its_show_keep_the_note(cli, removed, tmp_path):
    repo, name, _ = removed
    saved = tmp_path / "plan.json"
    assert cli("plan", str(repo), "--base", "main", "--out", str(saved)).code == 0
    assert f"?? {name} (" in cli("show", str(saved)).stdout


def test_a_renamed_file_or_an_absent_email_is_not_offboarding(cli, sandbox, removed):
    repo, name, _ = removed
    git(repo, "checkout", "-q", "--", ".")
    tenants = repo / "tenants"
    shutil.move(tenants / f"{name}.yaml", tenants / "renamed.yaml")
    result = cli("plan", str(repo), "--base", "main")
    assert result.code == 0 and "no longer managed" not in result.stdout, result


def test_without_base_nothing_is_said(cli, removed):
    repo, _, _ = removed
    result = cli("plan", str(repo))
    assert result.code == 0 and "no longer managed" not in result.stdout


def test_shards_name_a_removed_tenant_once_when_merged(cli, removed, tmp_path):
    repo, name, _ = removed
    files = []
    for index in (1, 2):
        out = tmp_path / f"plan-{index}.json"
        made = cli("plan", str(repo), "--base", "main", "--shard", f"{index}/2", "--out", str(out))
        assert made.code == 0, made
        files.append(str(out))
    merged = cli("report", "merge", *files, "--format", "json")
    assert merged.code == 0, merged
    assert [u["name"] for u in json.loads(merged.stdout)["noLongerManaged"]] == [name]
