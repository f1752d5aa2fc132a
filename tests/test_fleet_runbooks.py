"""The fleet's runbooks of docs/runbooks.md (onboarding, pausing, offboarding, a
bulk change), run as written: each ```sh block of a section, in bash
with `set -euo pipefail`, in the configuration repository of a sandbox fleet,
with `qlik-email` the CLI of this checkout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

RUNBOOKS = Path(__file__).resolve().parents[1] / "docs" / "runbooks.md"
GIT = ["git", "-c", "user.name=Ops", "-c", "user.email=ops@example.invalid"]


def blocks(section: str) -> list[str]:
    """The ```sh blocks of the `## section` of the runbooks."""
    text = RUNBOOKS.read_text()
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section {section!r} in {RUNBOOKS}"
    found = re.findall(r"^```sh\n(.*?)^```$", match.group(1), re.M | re.S)
    assert found, f"no commands in {section!r}"
    return found


def run(block: str, repo: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "QLIK_EMAIL_TODAY": "2026-12-01",
        "GIT_AUTHOR_NAME": "Ops",
        "GIT_AUTHOR_EMAIL": "ops@example.invalid",
        "GIT_COMMITTER_NAME": "Ops",
        "GIT_COMMITTER_EMAIL": "ops@example.invalid",
        **variables,
    }
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{block}"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def git(repo: Path, *args: str) -> None:
    subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True)


def tenant_vars(sandbox, index: int) -> dict[str, str]:
    tenant = sandbox.tenants[index]
    return {"NAME": tenant.name, "URL": tenant.url}


@pytest.mark.slow  # the CLI in processes of its own, a few seconds
def test_onboarding(sandbox, repo: Path):
    newcomer = sandbox.tenants[-1].name
    (repo / "tenants" / f"{newcomer}.yaml").unlink()
    sandbox.seed(newcomer, sandbox.basic_auth_body(newcomer))
    (block,) = blocks("Onboarding a tenant")
    key = f"${{file:.secrets/{newcomer}.apikey}}"
    output = ok(run(block, repo, **tenant_vars(sandbox, -1), API_KEY_REF=key))
    assert "Imported 1 tenant(s)" in output and "No changes." in output
    assert (repo / "tenants" / f"{newcomer}.yaml").exists()


@pytest.mark.slow  # the CLI in processes of its own, a few seconds
def test_pausing(sandbox, repo: Path, cli):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    name = sandbox.tenants[0].name
    key_file = repo / ".secrets" / f"{name}.apikey"
    key = key_file.read_text()
    key_file.write_text("expired-key\n")
    pause, resume = blocks("Pausing a tenant")
    output = ok(run(pause, repo, **tenant_vars(sandbox, 0)))
    assert f"|| {name} (" in output and "paused: API key expired" in output
    key_file.write_text(key)  # renewed
    output = ok(run(resume, repo, **tenant_vars(sandbox, 0)))
    assert "paused" not in output and "No changes." in output


def test_offboarding(sandbox, repo: Path):
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    (block,) = blocks("Offboarding a tenant")
    output = ok(run(block, repo, **tenant_vars(sandbox, 0)))
    name, url = sandbox.tenants[0].name, sandbox.tenants[0].url
    assert f"?? {name} ({url}): no longer managed: left as it is" in output


@pytest.mark.slow  # the CLI in processes of its own, a few seconds
def test_a_bulk_change_in_waves(sandbox, repo: Path, cli):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    (block,) = blocks("A bulk change in waves")
    output = ok(run(block, repo))
    assert "Waves: 3 of 3 ran (1 tenant(s) each)." in output
    assert "No drift" in output
    plan = json.loads((repo / "plan.json").read_text())
    assert plan["summary"]["update"] == 3  # the Microsoft 365 tenant has no sender name
    assert (repo / "plan.md").read_text().startswith("## qlik-email plan")
    assert all(
        sandbox.live_config(t.name)["providerConfig"].get("senderName") in ("Analytics", None)
        for t in sandbox.tenants
    )
