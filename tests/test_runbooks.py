"""The runbooks of docs/runbooks.md, run as written: each section's commands in
bash, in a clone of a configuration repository whose `origin` is a bare
repository, against the sandbox; then what the tenants hold and what the record
says are checked."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gitrepo import git

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "docs" / "runbooks.md"
STATE_REF = "refs/heads/qlik-email-state"


def runbook(title: str) -> str:
    """The shell commands of the section `## title`, in order."""
    text = RUNBOOKS.read_text()
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert blocks, title
    return "".join(blocks)


class Fleet:
    """The sandbox's configuration in a repository pushed to a bare remote, applied
    once with --state git; and a clone of it, where the runbooks run."""

    def __init__(self, sandbox: Any, tmp: Path, cli: Any) -> None:
        self.sandbox, self.tmp = sandbox, tmp
        self.remote = tmp / "remote.git"
        git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        origin = tmp / "origin"
        sandbox.write_config(origin / "config", microsoft365=(sandbox.tenants[1].name,))
        git(tmp, "init", "--quiet", "--initial-branch=main", str(origin))
        git(origin, "add", "-A")
        git(origin, "commit", "--quiet", "-m", "the fleet")
        git(origin, "push", "--quiet", str(self.remote), "HEAD:refs/heads/main")
        git(tmp, "clone", "--quiet", str(self.remote), str(tmp / "clone"))
        self.config = tmp / "clone" / "config"
        shutil.copytree(origin / "config" / ".secrets", self.config / ".secrets")
        first = cli("apply", str(self.config), "--auto-approve", "--state", "git")
        assert first.code == 0, first
        sandbox.reset_stats()

    def secret(self, name: str, value: str) -> str:
        """Write `value` to .secrets/`name` (as a secret store would hold it)."""
        path = self.config / ".secrets" / name
        path.write_text(value + "\n")
        path.chmod(0o600)
        return f"${{file:.secrets/{name}}}"

    def run(self, title: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
            "HOME": str(self.tmp),
            "GIT_AUTHOR_NAME": "ops",
            "GIT_AUTHOR_EMAIL": "ops@example.com",
            "GIT_COMMITTER_NAME": "ops",
            "GIT_COMMITTER_EMAIL": "ops@example.com",
            **env,
        }
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-euo", "pipefail", "-c", runbook(title)],
            cwd=self.config,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def record(self) -> dict[str, Any]:
        text = git(self.remote, "show", f"{STATE_REF}:config/applied.json")
        return dict(json.loads(text)["tenants"])

    def puts(self) -> set[str]:
        return {e.tenant for e in self.sandbox.request_log if e.method == "PUT"}

    def holds(self, name: str, value: str) -> bool:
        provider = self.sandbox.live_config(name)["providerConfig"]
        return bool(provider.get("emailPassword") == value)


@pytest.fixture
def fleet(sandbox, tmp_path, cli) -> Fleet:
    return Fleet(sandbox, tmp_path, cli)


def test_rotate_a_secret(fleet):
    tenant = "tenant-003"
    new = "rotated-0042"
    fleet.secret(f"{tenant}.smtp", new)
    fleet.sandbox.set_smtp_password(tenant, new)
    done = fleet.run("Rotate a secret", TENANT=tenant)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "secret will be re-sent (rotation (none) -> " in done.stdout
    assert fleet.puts() == {tenant} and fleet.holds(tenant, new)
    assert fleet.record()[tenant]["rotation"]
    assert done.stdout.rstrip().endswith("0 to delete, 1 unchanged.")  # the last plan
    assert "No changes." in done.stdout.split("Plan:")[-2]


def test_change_a_secret_reference(fleet):
    tenant = "tenant-001"
    new = "moved-0043"
    new_ref = fleet.secret("moved.smtp", new)
    fleet.sandbox.set_smtp_password(tenant, new)
    old_ref = f"${{file:.secrets/{tenant}.smtp}}"
    done = fleet.run("Change a secret reference", TENANT=tenant, OLD_REF=old_ref, NEW_REF=new_ref)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"reference changed: {old_ref} -> {new_ref}" in done.stdout
    assert fleet.puts() == {tenant} and fleet.holds(tenant, new)
    assert fleet.record()[tenant]["secretRef"] == new_ref


def test_recover_from_a_failed_apply(fleet, cli):
    tenant = "tenant-004"
    new = "not-yet-known-0044"
    new_ref = fleet.secret("next.smtp", new)
    path = fleet.config / "tenants" / f"{tenant}.yaml"
    path.write_text(path.read_text().replace(f"${{file:.secrets/{tenant}.smtp}}", new_ref))
    failed = cli("apply", str(fleet.config), "--auto-approve", "--state", "git")
    assert failed.code == 3, failed  # the SMTP server does not take the new password yet
    assert fleet.record()[tenant]["secretRef"] != new_ref
    fleet.sandbox.set_smtp_password(tenant, new)  # the cause, fixed
    fleet.sandbox.reset_stats()
    done = fleet.run("Recover from a failed apply")
    assert done.returncode == 0, done.stdout + done.stderr
    assert fleet.puts() == {tenant} and fleet.holds(tenant, new)
    assert fleet.record()[tenant]["secretRef"] == new_ref


def test_start_over_with_a_lost_record(fleet):
    git(fleet.remote, "update-ref", "-d", STATE_REF)
    done = fleet.run("Start over with a lost record")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no record at origin refs/heads/qlik-email-state:config/applied.json yet" in (
        done.stderr
    )
    assert fleet.puts() == {t.name for t in fleet.sandbox.tenants}
    assert sorted(fleet.record()) == [t.name for t in fleet.sandbox.tenants]
