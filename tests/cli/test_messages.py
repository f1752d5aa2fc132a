"""Messages a team can trust: balanced shards, drift ignore rules that silence
nothing, addresses in Markdown, and a saved plan applied from elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

RULES = """drift:
  ignore:
    - {tenant: "tenant-001", field: senderName, reason: rebrand OPS-42, expires: 2026-06-30}
    - {tenant: "globex*", field: "*", reason: left us, expires: 2027-12-31}
    - {tenant: "tenant-00*", field: serverPort, reason: migration, expires: 2027-12-31}
"""


@pytest.fixture
def six(tmp_path: Path) -> Iterator[tuple[object, Path]]:
    """A six-tenant sandbox and its configuration repository."""
    from reconciler.sandbox import Sandbox

    with Sandbox(tenants=6, seed=11) as fleet:
        yield fleet, fleet.write_config(tmp_path / "config")


def test_shards_of_six_tenants_are_two_two_two(cli, six):
    sandbox, repo = six
    seen: list[str] = []
    for index in (1, 2, 3):
        sandbox.reset_stats()
        result = cli("plan", str(repo), "--shard", f"{index}/3", "--format", "json")
        assert result.code == 0, result
        names = [t["name"] for t in json.loads(result.stdout)["tenants"]]
        assert len(names) == 2, (index, names)
        assert {e.tenant for e in sandbox.request_log} == set(names)  # only its own are read
        seen += names
    assert sorted(seen) == sorted(t.name for t in sandbox.tenants)


def test_validate_warns_of_ignore_rules_that_silence_nothing(cli, sandbox, repo, monkeypatch):
    root = repo / "qlik-email.yaml"
    root.write_text(root.read_text() + RULES)
    monkeypatch.setenv("QLIK_EMAIL_TODAY", "2026-07-01")
    result = cli("validate", str(repo))
    assert result.code == 0, result
    warnings = [line for line in result.stderr.splitlines() if "warning: drift.ignore" in line]
    assert len(warnings) == 2, result.stderr
    expired, unmatched = warnings
    assert "qlik-email.yaml:14:7: warning: drift.ignore rule for tenant tenant-001" in expired
    assert "expired on 2026-06-30: it silences nothing" in expired
    assert "qlik-email.yaml:15:7:" in unmatched and "globex* matches no tenant" in unmatched
    monkeypatch.setenv("QLIK_EMAIL_TODAY", "2026-06-30")
    assert cli("validate", str(repo)).stderr.count("warning: drift.ignore") == 1


def test_addresses_in_markdown_are_code_spans_without_invisible_characters(cli, sandbox, repo):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    name = sandbox.tenants[0].name
    sandbox.edit(name, emailAddress="ops@octocat.example")
    result = cli("drift", str(repo), "--format", "markdown")
    assert result.code == 2, result
    assert "`ops@octocat.example`" in result.stdout
    assert f"`qlik@{name}.example`" in result.stdout
    assert "\u200b" not in result.stdout


def test_a_saved_plan_applied_elsewhere_names_its_configuration(
    cli, sandbox, repo, tmp_path, monkeypatch
):
    saved = tmp_path / "plan.json"
    assert cli("plan", str(repo), "--out", str(saved)).code == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    sandbox.reset_stats()
    result = cli("apply", str(saved))
    assert result.code == 1, result
    root = str(repo.resolve())
    assert f"was made from the configuration at {root}" in result.stderr
    assert f"pass --config {root}" in result.stderr
    assert "no qlik-email.yaml here" not in result.stderr
    assert sandbox.request_log == []
    assert cli("apply", str(saved), "--config", str(repo)).code == 0
