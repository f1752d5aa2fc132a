"""Bad input changes nothing: every file of the bad-input corpus (tests/data/config)
and every unusable secret reference gives exit 1, an actionable message naming
file:line:column, no traceback, and not one request reaching the sandbox."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from test_loader import CASES, DATA

TENANT_URL = re.compile(r"^url: https://([a-z]+)\.eu\.qlikcloud\.com$", re.MULTILINE)
# Its point is two spellings of one URL: rewriting one of them would spoil it.
KEEP_URLS = {"duplicate-tenant-url"}


def _urls(path: Path) -> list[re.Match[str]]:
    try:
        return list(TENANT_URL.finditer(path.read_text()))
    except (UnicodeDecodeError, OSError):
        return []


NAMES = sorted({m.group(1) for p in DATA.rglob("*.yaml") if p.is_file() for m in _urls(p)})


@pytest.fixture(scope="module")
def sandbox_of_fixtures():
    from reconciler.sandbox import Sandbox

    with Sandbox(names=NAMES, seed=5) as fleet:
        yield fleet


@pytest.fixture
def fleet(sandbox_of_fixtures, monkeypatch):
    """A sandbox with the fixtures' tenants, which any valid fixture would reach
    (a request with a wrong key is still a request in the log). Its host is
    allowed, so that a file is refused for its own problem, not for its host."""
    key = sandbox_of_fixtures.tenant("acme").api_key
    monkeypatch.setenv("QLIK_API_KEY", key)
    monkeypatch.setenv("ACME_SMTP_PASSWORD", "unused-by-plan")
    monkeypatch.setenv("QLIK_EMAIL_ALLOWED_HOSTS", "127.0.0.1")
    sandbox_of_fixtures.reset_stats()
    return sandbox_of_fixtures


def copy_pointing_at(case: str, sandbox, tmp_path: Path) -> Path:
    """The fixture, with its well-formed tenant URLs pointing at the sandbox."""
    target = tmp_path / case
    shutil.copytree(DATA / case, target, symlinks=True)
    for path in target.rglob("*.yaml"):
        if case not in KEEP_URLS and path.is_file() and os.access(path, os.R_OK):
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue  # the non-UTF-8 fixture stays byte for byte as it is
            path.write_text(TENANT_URL.sub(rf"url: {sandbox.base_url}/t/\1", text))
    return target


def test_the_corpus_has_at_least_40_files():
    files = [p for p in DATA.rglob("*") if p.is_file()]
    assert len(files) >= 40
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    ("case", "file", "line", "column", "phrase"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_file_exits_1_with_position_and_sends_nothing(
    fleet, cli, tmp_path, monkeypatch, case, file, line, column, phrase
):
    monkeypatch.chdir(copy_pointing_at(case, fleet, tmp_path))
    fleet.reset_stats()
    result = cli("plan", ".")
    assert result.code == 1, result
    assert f"{file}:{line}:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert fleet.request_log == []


def test_valid_fixture_does_reach_the_sandbox(fleet, cli, tmp_path, monkeypatch):
    # The control for the test above: the same set-up with a valid file sends requests.
    monkeypatch.setenv("QLIK_EMAIL_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.chdir(copy_pointing_at("valid-minimal", fleet, tmp_path))
    fleet.reset_stats()
    result = cli("plan", ".")
    assert result.code == 0, result
    assert len(fleet.request_log) == 1


REFERENCES = {
    "missing-env": ("${env:NOT_SET_ANYWHERE}", "environment variable NOT_SET_ANYWHERE is not set"),
    "missing-file": ("${file:.secrets/nope}", "cannot read"),
    "outside-repo": ("${file:/etc/hostname}", "outside the configuration repository"),
    "parent-dir": ("${file:../outside.key}", "outside the configuration repository"),
    "symlink-out": ("${file:link.key}", "outside the configuration repository"),
    "cmd-in-plan": ("${cmd:touch ran-a-command}", "command references are not run"),
    "multi-line-file": ("${file:multi.key}", "${file:multi.key} resolved to a value with a line"),
}
# A key file with a second line, which would forge a log line or a request header.
MULTI_LINE = "sbx-key-first-line\n::stop-commands::hidden-second-line\n"


@pytest.mark.parametrize("case", sorted(REFERENCES))
def test_unusable_api_key_reference_exits_1_at_its_line(fleet, cli, tmp_path, monkeypatch, case):
    reference, phrase = REFERENCES[case]
    monkeypatch.setenv("QLIK_EMAIL_ALLOWED_HOSTS", "127.0.0.1")
    repo = copy_pointing_at("valid-minimal", fleet, tmp_path)
    (tmp_path / "outside.key").write_text("outside")
    (repo / "link.key").symlink_to(tmp_path / "outside.key")
    (repo / "multi.key").write_text(MULTI_LINE)
    root = repo / "qlik-email.yaml"
    root.write_text(root.read_text().replace("${env:QLIK_API_KEY}", reference))
    monkeypatch.chdir(repo)
    fleet.reset_stats()
    result = cli("plan", ".")
    assert result.code == 1, result
    assert "qlik-email.yaml:3:13:" in result.stdout  # where defaults.auth.apiKey is written
    assert phrase in result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert fleet.request_log == []
    assert not (repo / "ran-a-command").exists()
    assert "first-line" not in result.stdout + result.stderr
    assert not any(line.startswith("::") for line in (result.stdout + result.stderr).split("\n"))
