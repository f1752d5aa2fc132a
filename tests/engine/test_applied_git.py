"""The git record store: leases, races, a record this version cannot use, names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepo import git

from reconciler.engine.applied_git import DEFAULT_REF, GitLocation, GitStore
from reconciler.errors import StateFileError
from reconciler.model import AppliedSecret


@pytest.fixture
def remote(tmp_path) -> Path:
    """A bare remote with one commit on main holding config/qlik-email.yaml."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = tmp_path / "work"
    (work / "config").mkdir(parents=True)
    (work / "config" / "qlik-email.yaml").write_text("settings: {}\n")
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "config")
    git(work, "push", "--quiet", str(bare), "HEAD:refs/heads/main")
    return bare


def clone(remote: Path, name: str) -> Path:
    target = remote.parent / name
    git(remote.parent, "clone", "--quiet", str(remote), str(target))
    return target / "config"


def entry(name: str) -> dict[str, AppliedSecret]:
    return {name: AppliedSecret(f"https://{name}.example", f"${{env:{name.upper()}}}")}


def on_remote(remote: Path) -> dict[str, object]:
    text = git(remote, "show", f"{DEFAULT_REF}:config/applied.json")
    return dict(json.loads(text)["tenants"])


def test_two_applies_that_race_both_end_in_the_record(remote):
    """Two shards read the same record; the second push loses the lease, is rebuilt
    on the record that won, and pushed again: neither shard's tenants are lost."""
    first, second = (
        GitStore(clone(remote, "a"), GitLocation()),
        GitStore(clone(remote, "b"), GitLocation()),
    )
    assert first.load().record.tenants == {} and second.load().record.tenants == {}
    first.claim()
    second.claim()  # raced the first claim: rebuilt on it
    assert first.save(entry("t1"))
    assert second.save(entry("t2"))  # its lease names the commit of its claim: lost, retried
    assert sorted(on_remote(remote)) == ["t1", "t2"]
    assert not second.save(entry("t2"))  # already recorded: nothing pushed
    log = git(remote, "log", "--format=%s", DEFAULT_REF).splitlines()
    assert log[:2] == ["qlik-email apply: recorded 1 tenant(s)"] * 2
    assert set(log[2:]) == {"qlik-email apply: starting"}  # (two equal claims are one commit)
    # Only the record's ref was written: main and the clones' branches are as they were.
    assert git(remote, "for-each-ref", "--format=%(refname)") == f"refs/heads/main\n{DEFAULT_REF}"


def test_a_record_this_version_cannot_use_is_said_and_replaced(remote):
    store = GitStore(clone(remote, "a"), GitLocation())
    store.load()
    store.claim()
    work = remote.parent / "a"
    git(work, "fetch", "--quiet", "origin", DEFAULT_REF)
    git(work, "checkout", "--quiet", "FETCH_HEAD")
    (work / "config" / "applied.json").write_text('{"kind": "something else"}')
    git(work, "commit", "--quiet", "-am", "broken")
    git(work, "push", "--quiet", "origin", f"HEAD:{DEFAULT_REF}")

    fresh = GitStore(clone(remote, "b"), GitLocation())
    loaded = fresh.load()
    assert loaded.record.tenants == {}
    assert loaded.note is not None and "not an applied-state file" in loaded.note
    assert "re-sent once (safe)" in loaded.note
    fresh.claim()
    assert fresh.save(entry("t1"))
    assert list(on_remote(remote)) == ["t1"]


def test_the_remote_and_ref_are_names_never_options(tmp_path):
    assert GitLocation.of(None, None) == GitLocation("origin", "refs/heads/qlik-email-state")
    assert GitLocation.of("upstream", "records").ref == "refs/heads/records"
    assert GitLocation.of(None, "refs/qlik-email/state").ref == "refs/qlik-email/state"
    for remote, ref in [("--upload-pack=touch x", None), (None, "refs/heads/a..b"), ("a b", None)]:
        with pytest.raises(StateFileError, match="is not a git remote or ref name"):
            GitLocation.of(remote, ref)


def test_state_remote_goes_with_state_git(cli, tmp_path):
    result = cli("plan", str(tmp_path), "--state", "file.json", "--state-remote", "origin")
    assert result.code == 1 and "--state-remote and --state-ref go with --state git" in (
        result.stderr
    )


def test_state_git_outside_a_checkout_says_so(cli, tmp_path):
    (tmp_path / "qlik-email.yaml").write_text("settings: {}\n")
    result = cli("plan", str(tmp_path), "--state", "git")
    assert result.code == 1
    assert f"--state git: {tmp_path} is not in a git checkout" in result.stderr
