"""The trust anchor under attack: a pull request that controls every file of its
checkout tries to choose the base it is judged by, or to widen what the base
allows. Each test builds a real git repository with the sandbox fleet's
configuration as the base, makes the pull request's change, runs the real CLI
from the checkout (as the workflows do) and asserts that the catch server on
127.0.0.1 received no request carrying a credential."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from catch_server import Attacker
from catch_server import attacker as attacker

GIT = ["git", "-c", "user.name=Base", "-c", "user.email=base@example.invalid"]
NOT_READ = "url or credentials changed in this pull request; read after merge"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def edit(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def top(sandbox, tmp_path: Path) -> Path:
    """A repository whose `prod/` holds the sandbox fleet's configuration."""
    root = tmp_path / "repo"
    sandbox.write_config(root / "prod")
    git(root.parent, "init", "-q", "-b", "main", str(root))
    commit_all(root, "base")
    return root


def test_a_directory_named_after_the_base_revision_is_not_the_base(
    sandbox, top, cli, attacker: Attacker, monkeypatch
):
    prod = top / "prod"
    sha = git(top, "rev-parse", "HEAD")
    key_ref = yaml.safe_load((prod / "tenants/tenant-001.yaml").read_text())["auth"]["apiKey"]
    # The pull request moves tenant-001 to its own host (same key), and adds a
    # "base" that vouches for the move, in a directory named like the revision.
    edit(prod / "tenants/tenant-001.yaml", url=attacker.url())
    fake = top / sha / "prod"
    shutil.copytree(prod, fake, ignore=shutil.ignore_patterns(".secrets"))
    edit(fake / "qlik-email.yaml", settings={"allowedHosts": ["*"]})
    edit(fake / "tenants/tenant-001.yaml", url=attacker.url(), auth={"apiKey": key_ref})
    shutil.copytree(fake, top / sha, dirs_exist_ok=True)  # at the top level too
    commit_all(top, "pull request")
    monkeypatch.chdir(top)  # the workflows run from the pull request's checkout
    sandbox.reset_stats()
    for where in ("prod", str(prod)):
        result = cli("plan", where, "--base", sha, "--format", "json")
        assert result.code == 0, result
        assert attacker.requests == []
        assert NOT_READ in result.stdout  # judged by the real base: not read
    # The same with only the directory and no revision of that name: exit 1.
    bogus = "0" * 40
    (top / bogus).mkdir()
    shutil.copytree(fake, top / bogus / "prod")
    sandbox.reset_stats()
    result = cli("plan", "prod", "--base", bogus)
    assert result.code == 1
    assert f"'{bogus}' is not a commit of the repository" in result.stderr
    assert "never a directory" in result.stderr
    assert attacker.requests == [] and sandbox.request_log == []
    # The control: a trusted directory, named explicitly, is believed.
    result = cli("plan", "prod", "--base-dir", str(fake))
    assert result.code == 0, result
    assert f"Bearer {sandbox.tenant('tenant-001').api_key}" in attacker.credentials()


@pytest.fixture
def two_fleets(top: Path, attacker: Attacker) -> Path:
    """`staging/`, a second configuration whose tenant-001 lives on the catch
    server (with the same key references, its own `.secrets`)."""
    staging = top / "staging"
    shutil.copytree(top / "prod", staging)
    edit(staging / "tenants/tenant-001.yaml", url=attacker.url())
    commit_all(top, "staging")
    return top


def test_a_link_in_the_checkout_does_not_choose_another_base(
    sandbox, two_fleets, cli, attacker: Attacker, monkeypatch
):
    top = two_fleets
    shutil.rmtree(top / "prod")
    (top / "prod").symlink_to("staging")
    commit_all(top, "prod is staging now")
    monkeypatch.chdir(top)
    sandbox.reset_stats()
    for where in ("prod", "prod/qlik-email.yaml", str(top / "prod")):
        result = cli("plan", where, "--base", "main")
        assert result.code == 1, result
        assert "prod is a symbolic link" in result.stderr
        assert "without symbolic links" in result.stderr
    assert attacker.requests == [] and sandbox.request_log == []
    # The control: followed as a link, the base of staging vouches for the move.
    result = cli("plan", "staging", "--base", "main")
    assert result.code == 0
    assert f"Bearer {sandbox.tenant('tenant-001').api_key}" in attacker.credentials()


def test_a_link_in_the_base_or_the_head_commit_is_refused(
    sandbox, two_fleets, cli, attacker: Attacker, monkeypatch
):
    top = two_fleets
    # The base commit has prod as a link; the checkout, a real directory again.
    saved = top.parent / "prod-copy"
    shutil.copytree(top / "prod", saved)
    shutil.rmtree(top / "prod")
    (top / "prod").symlink_to("staging")
    linked = commit_all(top, "prod is a link")
    git(top, "rm", "-q", "prod")
    shutil.copytree(saved, top / "prod")
    commit_all(top, "prod is a directory again")
    monkeypatch.chdir(top)
    sandbox.reset_stats()
    result = cli("plan", "prod", "--base", linked)
    assert result.code == 1
    assert f"prod is a symbolic link in {linked}" in result.stderr
    # A committed link that the checkout no longer shows is refused too.
    git(top, "checkout", "-q", linked)
    os.remove(top / "prod")
    shutil.copytree(saved, top / "prod")
    result = cli("plan", "prod", "--base", "main")
    assert result.code == 1
    assert "prod is a symbolic link in the checked-out commit" in result.stderr
    assert attacker.requests == [] and sandbox.request_log == []


def test_a_revision_that_does_not_resolve_contacts_nothing(sandbox, top, cli, monkeypatch):
    monkeypatch.chdir(top)
    sandbox.reset_stats()
    for revision in ("no-such-branch", "-x", "main main", "main\n"):
        result = cli("plan", "prod", "--base", revision)
        assert result.code == 1, (revision, result)
        assert "--base" in result.stderr
    assert sandbox.request_log == []


def at(path: Path, text: str) -> str:
    """`line:column` (1-based) where `text` first appears in the file at `path`."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return f"{number}:{line.index(text) + 1}"
    raise AssertionError(text)


def test_a_pull_request_cannot_widen_a_glob_of_the_base(sandbox, top, cli, monkeypatch):
    root = top / "prod" / "qlik-email.yaml"
    settings = {
        "allowedHosts": ["127.0.0.1"],
        "policy": {"smtpHosts": ["127.0.0.1", "mail?.corp.example"]},
    }
    edit(root, settings=settings)
    commit_all(top, "policy")
    # Glob text that a base glob matches, literally: `*` is one character for `?`.
    settings["policy"] = {
        "smtpHosts": ["127.0.0.1", "mail*.corp.example"],
        "senderDomains": ["*.example"],
    }
    settings["allowedHosts"] = ["127.0.0.?"]
    edit(root, settings=settings)
    three = top / "prod" / "tenants" / "tenant-003.yaml"
    three.write_text(three.read_text() + "  serverAddress: mail.attacker.corp.example\n")
    monkeypatch.chdir(top)
    assert cli("validate", "prod").code == 0  # the pull request's own rules allow it
    sandbox.reset_stats()
    result = cli("validate", "prod", "--base", "main")
    assert result.code == 1
    lines = result.stderr.splitlines()
    wanted = [
        f"prod/qlik-email.yaml:{at(root, '127.0.0.?')}: '127.0.0.?' would allow tenant hosts",
        f"prod/qlik-email.yaml:{at(root, 'mail*')}: 'mail*.corp.example' would allow SMTP hosts",
        "SMTP host mail.attacker.corp.example is not allowed by settings.policy.smtpHosts",
    ]
    for text in wanted:
        assert any(text in line for line in lines), (text, lines)
    # senderDomains: the base sets none, so the pull request may add a limit.
    assert "sender domains" not in result.stderr
    assert cli("plan", "prod", "--base", "main").code == 1
    assert sandbox.request_log == []
    # Dropping an entry, or naming a host the base matches, stays valid.
    settings["policy"] = {"smtpHosts": ["127.0.0.1", "mail1.corp.example"]}
    settings["allowedHosts"] = ["127.0.0.1"]
    edit(root, settings=settings)
    three.write_text(three.read_text().replace("mail.attacker", "mail1"))
    assert cli("validate", "prod", "--base", "main").code == 0
