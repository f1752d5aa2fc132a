"""GitHub-aware output: annotations for configuration errors, masks for secrets,
and the Markdown report files the workflows post."""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import ConfigIssue
from reconciler.report.github import (
    add_mask_commands,
    error_annotation,
    escape_data,
    escape_property,
)
from reconciler.secrets import ResolvePolicy, SecretRef, SecretResolver


def test_escaping_follows_the_toolkit_rules():
    assert escape_data("100% done\r\nnext, a: b") == "100%25 done%0D%0Anext, a: b"
    assert escape_property("a,b:c%\n") == "a%2Cb%3Ac%25%0A"


def test_annotation_names_file_line_and_column():
    issue = ConfigIssue("tenants/a,b:c.yaml", 6, 3, "100% wrong\nsee docs")
    assert error_annotation(issue) == (
        "::error file=tenants/a%2Cb%3Ac.yaml,line=6,col=3,title=qlik-email::100%25 wrong%0Asee docs"
    )


def test_multiline_secret_is_masked_line_by_line():
    assert add_mask_commands("first\n\nsec%ond\n") == [
        "::add-mask::first",
        "::add-mask::sec%25ond",
    ]


def write_invalid(tmp_path: Path) -> Path:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "acme.yaml").write_text(
        "name: acme\nurl: https://acme.eu.qlikcloud.com\nauth:\n  apiKey: ${env:K}\n"
        "email:\n  serverAdress: smtp.example.com\n"
    )
    return tmp_path


def test_validate_prints_annotations_in_github_actions(cli, tmp_path, monkeypatch):
    repo = write_invalid(tmp_path)
    monkeypatch.chdir(repo)
    quiet = cli("validate", ".")
    assert quiet.code == 1 and "::error" not in quiet.stdout + quiet.stderr
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = cli("validate", ".")
    assert result.code == 1 and result.stdout == ""  # stdout is for reports only
    annotations = [line for line in result.stderr.splitlines() if line.startswith("::")]
    issues = [line for line in result.stderr.splitlines() if line.startswith("tenants/")]
    assert len(annotations) == len(issues) >= 2
    assert all(line.startswith("::error file=tenants/acme.yaml,line=") for line in annotations)
    assert any(
        ",line=6,col=3,title=qlik-email::unknown key 'serverAdress'" in line for line in annotations
    )


def test_on_resolve_sees_each_value_once_before_resolve_returns(tmp_path):
    seen: list[str] = []
    policy = ResolvePolicy(base_dir=tmp_path, env={"A": "alpha", "B": "beta"})
    resolver = SecretResolver(policy, on_resolve=seen.append)
    first = resolver.resolve(SecretRef("env", "A"))
    assert seen == ["alpha"]  # already masked when the caller gets the value
    resolver.resolve(SecretRef("env", "A"))
    resolver.resolve(SecretRef("env", "B"))
    assert seen == ["alpha", "beta"]
    assert first.reveal() == "alpha"


def test_no_mask_is_printed_outside_github_actions(cli, repo, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    result = cli("plan", str(repo))
    assert result.code == 0 and "::add-mask::" not in result.stdout + result.stderr


def test_markdown_file_matches_the_markdown_format(cli, repo, tmp_path):
    summary = tmp_path / "plan.md"
    text = cli("plan", str(repo), "--markdown", str(summary))
    markdown = cli("plan", str(repo), "--format", "markdown")
    assert text.code == markdown.code == 0
    assert summary.read_text() == markdown.stdout
    assert text.stdout.startswith("qlik-email will perform")


def test_apply_and_drift_write_markdown_files(cli, repo, tmp_path):
    applied, nothing, drift = (tmp_path / name for name in ("a.md", "n.md", "d.md"))
    assert cli("apply", str(repo), "--auto-approve", "--markdown", str(applied)).code == 0
    assert "**Apply: 4 applied" in applied.read_text()
    assert cli("apply", str(repo), "--auto-approve", "--markdown", str(nothing)).code == 0
    assert "0 applied, 0 verify failed, 0 failed, 0 skipped, 4 unchanged." in nothing.read_text()
    assert cli("drift", str(repo), "--markdown", str(drift)).code == 0
    assert drift.read_text().startswith("## qlik-email drift")


def test_annotations_show_invisible_characters_as_escapes():
    issue = ConfigIssue(
        "tenants/a\u202eb.yaml", 3, 5, "senderName Acme\u2028::warning::x\xad\U000e0041\nmore"
    )
    line = error_annotation(issue)
    assert "\n" not in line and "\u2028" not in line and "\u202e" not in line
    assert "a\\u202eb.yaml" in line
    assert line.endswith("::senderName Acme\\u2028::warning::x\\xad\\U000e0041%0Amore")
