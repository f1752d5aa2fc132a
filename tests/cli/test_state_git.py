"""`--state git` end to end, as CI jobs run it: a bare remote, and a fresh clone
for every job (the pull request's plan, the post-merge plan, the apply of that
saved plan, the next run). What each plan promised is compared, per tenant,
with what apply did; a failed re-send is retried by the next apply; plan never
writes the record; a record that cannot be written stops apply before any
tenant is touched."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gitrepo import git

from reconciler.engine.applied_git import DEFAULT_REF

NEW_PASSWORD = "moved-smtp-password-4711"
REFUSED_PASSWORD = "unknown-smtp-password-0042"


class Repository:
    """The configuration repository: a bare remote, the maintainers' clone, and
    a fresh clone per CI job (the secrets copied in, as CI injects them)."""

    def __init__(self, sandbox: Any, tmp: Path) -> None:
        self.tmp = tmp
        self.remote = tmp / "remote.git"
        git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        self.work = tmp / "work"
        sandbox.write_config(self.work / "config", microsoft365=(sandbox.tenants[1].name,))
        git(tmp, "init", "--quiet", "--initial-branch=main", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.remote))
        self.commit("the fleet")
        self.jobs = 0

    @property
    def secrets(self) -> Path:
        return self.work / "config" / ".secrets"

    def commit(self, message: str, branch: str = "main") -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "-m", message)
        git(self.work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        return git(self.work, "rev-parse", "HEAD")

    def job(self, branch: str = "main") -> Path:
        """A fresh clone of `branch`, as a CI job checks it out; its config directory."""
        self.jobs += 1
        clone = self.tmp / f"job-{self.jobs}"
        git(self.tmp, "clone", "--quiet", "--branch", branch, str(self.remote), str(clone))
        shutil.copytree(self.secrets, clone / "config" / ".secrets")
        return clone / "config"

    def record(self) -> dict[str, Any]:
        """The record on the remote's ref (an empty dict when there is none)."""
        done = subprocess.run(
            ["git", "--git-dir", str(self.remote), "show", f"{DEFAULT_REF}:config/applied.json"],
            capture_output=True,
            text=True,
        )
        return json.loads(done.stdout)["tenants"] if done.returncode == 0 else {}

    def state_commits(self) -> int:
        done = subprocess.run(
            ["git", "--git-dir", str(self.remote), "rev-list", "--count", DEFAULT_REF],
            capture_output=True,
            text=True,
        )
        return int(done.stdout) if done.returncode == 0 else 0

    def edit(self, tenant: str, old: str, new: str) -> None:
        path = self.work / "config" / "tenants" / f"{tenant}.yaml"
        text = path.read_text()
        assert old in text, (tenant, old)
        path.write_text(text.replace(old, new, 1))


def holds(sandbox: Any, name: str, value: str) -> bool:
    """Whether the tenant stores `value` as its secret (a bool: a failing assertion
    never prints a secret)."""
    provider = sandbox.live_config(name)["providerConfig"]
    return bool((provider.get("emailPassword") or provider.get("clientSecret")) == value)


def puts(sandbox: Any) -> set[str]:
    return {e.tenant for e in sandbox.request_log if e.method == "PUT"}


def promised(plan_file: Path) -> dict[str, tuple[str, frozenset[str], bool]]:
    """Per tenant that changes: its action, the fields that change, and whether
    its secret is re-sent because of the record."""
    document = json.loads(plan_file.read_text())
    return {
        t["name"]: (
            t["action"],
            frozenset(c["field"] for c in t["changes"]),
            any(c.get("comparedWith") == "state" for c in t["changes"]),
        )
        for t in document["tenants"]
        if t["action"] != "no-op"
    }


def outcomes(report_file: Path) -> dict[str, str]:
    report = json.loads(report_file.read_text())
    return {t["name"]: t["outcome"] for t in report["tenants"] if t["outcome"] != "unchanged"}


@pytest.fixture
def repository(sandbox, tmp_path) -> Repository:
    return Repository(sandbox, tmp_path)


def test_what_the_pull_request_plan_shows_is_what_apply_does(sandbox, repository, cli, tmp_path):
    names = [t.name for t in sandbox.tenants]
    rotated, moved, renamed, failing = names[0], names[2], names[3], names[3]

    # The first apply: nothing is recorded, every secret is sent once, and the
    # record is created on the remote (a plan before it only read it).
    first_plan = cli("plan", str(repository.job()), "--state", "git")
    assert first_plan.code == 0, first_plan
    assert "no record at origin refs/heads/qlik-email-state:config/applied.json yet" in (
        first_plan.stderr
    )
    assert repository.state_commits() == 0  # plan never writes
    first = cli("apply", str(repository.job()), "--auto-approve", "--state", "git")
    assert first.code == 0, first
    assert puts(sandbox) == set(names)
    assert sorted(repository.record()) == names
    assert cli("plan", str(repository.job()), "--state", "git").stdout.startswith("No changes.")
    sandbox.reset_stats()

    # A pull request: a rotation bump, a moved secret reference, a sender name.
    git(repository.work, "checkout", "--quiet", "-b", "pr")
    repository.edit(rotated, "  senderName:", "  passwordRotation: 2\n  senderName:")
    (repository.secrets / "moved.smtp").write_text(NEW_PASSWORD + "\n")
    (repository.secrets / "moved.smtp").chmod(0o600)
    repository.edit(moved, f".secrets/{moved}.smtp", ".secrets/moved.smtp")
    repository.edit(renamed, '"Tenant 004"', '"Four"')
    base = git(repository.work, "rev-parse", "main")
    repository.commit("rotate, move, rename", branch="pr")
    commits = repository.state_commits()
    pr_plan = tmp_path / "pr-plan.json"
    shown = cli(
        "plan", str(repository.job("pr")), "--base", base, "--state", "git", "--out", str(pr_plan)
    )
    assert shown.code == 0, shown
    assert "1 secret(s) will be re-sent" not in shown.stdout  # two of them
    assert promised(pr_plan) == {
        rotated: ("update", frozenset({"password"}), True),
        moved: ("update", frozenset({"password"}), True),
        renamed: ("update", frozenset({"senderName"}), False),
    }
    assert repository.state_commits() == commits  # plan only reads the record

    # Merged. The apply workflow's plan job saves the post-merge plan; its apply
    # job, in a checkout of its own, applies that saved plan.
    git(repository.work, "push", "--quiet", "origin", "pr:main")
    sandbox.set_smtp_password(moved, NEW_PASSWORD)
    sandbox.break_password(rotated)  # only a re-send can repair it: GET looks the same
    merged_plan = tmp_path / "plan.json"
    planned = cli("plan", str(repository.job()), "--state", "git", "--out", str(merged_plan))
    assert planned.code == 0, planned
    assert promised(merged_plan) == promised(pr_plan)
    report = tmp_path / "apply.json"
    applied = cli(
        "apply", str(merged_plan), "--config", str(repository.job()), "--state", "git",
        "--report", str(report),
    )  # fmt: skip
    assert applied.code == 0, applied
    assert outcomes(report) == {name: "applied" for name in promised(pr_plan)}
    assert puts(sandbox) == set(promised(pr_plan))
    assert holds(sandbox, moved, NEW_PASSWORD), "the moved reference was not sent"
    assert holds(sandbox, rotated, sandbox.tenant(rotated).smtp_password), "not re-sent"
    record = repository.record()
    assert record[moved]["secretRef"] == "${file:.secrets/moved.smtp}"
    assert record[rotated]["rotation"] == "2"

    # The next run re-sends nothing.
    sandbox.reset_stats()
    again = cli("plan", str(repository.job()), "--state", "git")
    assert again.stdout.startswith("No changes."), again
    nothing = cli("apply", str(repository.job()), "--auto-approve", "--state", "git")
    assert nothing.code == 0 and "Nothing to apply" in nothing.stdout, nothing
    assert puts(sandbox) == set()

    # A re-send that fails (the SMTP server does not take the new password yet)
    # is not recorded, and the next apply re-sends it.
    (repository.secrets / "refused.smtp").write_text(REFUSED_PASSWORD + "\n")
    (repository.secrets / "refused.smtp").chmod(0o600)
    repository.edit(failing, f".secrets/{failing}.smtp", ".secrets/refused.smtp")
    repository.commit("move a secret the server does not know yet")
    failed = cli("apply", str(repository.job()), "--auto-approve", "--state", "git")
    assert failed.code == 3, failed
    assert repository.record()[failing]["secretRef"] == f"${{file:.secrets/{failing}.smtp}}"
    # The nightly drift reads the record (and only reads it): the secret apply
    # could not send is drift the API alone cannot show.
    commits = repository.state_commits()
    drifted = cli("drift", str(repository.job()), "--state", "git")
    assert drifted.code == 2, drifted
    assert f"~ {failing} (" in drifted.stdout
    assert "password: not applied yet (reference changed: " in drifted.stdout
    assert "Drift: 1 drifted" in drifted.stdout
    assert repository.state_commits() == commits
    sandbox.set_smtp_password(failing, REFUSED_PASSWORD)
    sandbox.reset_stats()
    retried_plan = tmp_path / "retried.json"
    cli("plan", str(repository.job()), "--state", "git", "--out", str(retried_plan))
    assert promised(retried_plan) == {failing: ("update", frozenset({"password"}), True)}
    retried = cli("apply", str(repository.job()), "--auto-approve", "--state", "git")
    assert retried.code == 0, retried
    assert puts(sandbox) == {failing}
    assert holds(sandbox, failing, REFUSED_PASSWORD)
    assert repository.record()[failing]["secretRef"] == "${file:.secrets/refused.smtp}"
    assert cli("plan", str(repository.job()), "--state", "git").stdout.startswith("No changes.")
    assert cli("drift", str(repository.job()), "--state", "git").code == 0


def test_a_record_that_cannot_be_pushed_stops_apply_before_any_write(sandbox, repository, cli):
    """The remote refuses pushes to the record's ref (as a protection rule would):
    apply fetches, plans, and stops before it writes to any tenant."""
    hook = repository.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'the state ref is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    refused = cli("apply", str(repository.job()), "--auto-approve", "--state", "git")
    assert refused.code == 1, refused
    assert "cannot push the record to origin refs/heads/qlik-email-state" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert puts(sandbox) == set()
    assert all(sandbox.live_config(t.name) is None for t in sandbox.tenants)


def test_a_state_file_in_a_missing_directory_stops_apply_before_any_write(
    sandbox, repo, cli, tmp_path
):
    state = tmp_path / "missing" / "applied.json"
    refused = cli("apply", str(repo), "--auto-approve", "--state", str(state))
    assert refused.code == 1, refused
    assert f"the directory {state.parent} does not exist" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert puts(sandbox) == set()
    assert not state.parent.exists()


def test_plan_says_when_the_record_cannot_be_read(sandbox, repository, cli):
    """No remote to fetch from: plan goes on, every secret shown as re-sent (safe)."""
    config = repository.job()
    git(config.parent, "remote", "set-url", "origin", str(repository.tmp / "gone.git"))
    shown = cli("plan", str(config), "--state", "git")
    assert shown.code == 0, shown
    assert "could not be read" in shown.stderr and "re-sent once (safe)" in shown.stderr
    for tenant in sandbox.tenants:
        assert f"not recorded as applied yet: ${{file:.secrets/{tenant.name}." in shown.stdout
    refused = cli("apply", str(config), "--auto-approve", "--state", "git")
    assert refused.code == 1 and "nothing was changed" in refused.stderr, refused
    assert puts(sandbox) == set()
