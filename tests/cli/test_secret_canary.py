"""No secret value ever reaches output: every command, every format, --debug,
failure paths, report and plan files, and a server that echoes request bodies
(including the secrets they carry) into its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

CANARY_WRONG = "CANARY-wrong-smtp-password-4711"


def secrets_of(sandbox) -> list[str]:
    values = [CANARY_WRONG]
    for t in sandbox.tenants:
        values += [t.api_key, t.smtp_password, t.m365_client_secret, t.oauth_client_secret]
    return [v for v in values if v]


def everything_written(results, directory: Path) -> str:
    text = "".join(r.stdout + r.stderr for r in results)
    for path in directory.rglob("*"):
        if path.is_file() and ".secrets" not in path.parts:
            text += path.read_text(errors="replace")
    return text


def test_no_secret_in_any_output(sandbox, repo, cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    results = []
    for fmt in ("text", "json", "markdown"):
        results.append(cli("--debug", "validate", str(repo)))
        results.append(
            cli(
                "--debug",
                "plan",
                str(repo),
                "--format",
                fmt,
                "--out",
                str(out / f"plan-{fmt}.json"),
            )
        )
    results.append(
        cli(
            "--debug",
            "apply",
            str(repo),
            "--auto-approve",
            "--test-email",
            "ops@example.com",
            "--report",
            str(out / "apply.json"),
        )
    )
    assert results[-1].code == 0, results[-1]
    # Failure paths: a wrong password, a server echoing request bodies in its errors,
    # an unhealthy tenant under drift --verify, and every format of each report.
    (repo / ".secrets" / "tenant-001.smtp").write_text(CANARY_WRONG)
    path = repo / "tenants" / "tenant-001.yaml"
    data = yaml.safe_load(path.read_text())
    data["email"]["senderName"] = "Changed"
    path.write_text(yaml.safe_dump(data))
    sandbox.faults.set(echo_body=True)
    for fmt in ("text", "json", "markdown"):
        failed = cli(
            "--debug",
            "apply",
            str(repo),
            "--auto-approve",
            "--rotate-secrets",
            "--format",
            fmt,
            "--report",
            str(out / f"apply-{fmt}.json"),
        )
        assert failed.code == 3, failed
        results.append(failed)
        assert "request body:" in failed.stdout  # the echo is there, the secrets are not
    sandbox.break_password("tenant-003")
    for fmt in ("text", "json", "markdown", "html", "csv"):
        results.append(
            cli(
                "--debug",
                "drift",
                str(repo),
                "--verify",
                "--format",
                fmt,
                "--report",
                str(out / f"drift-{fmt}.json"),
                "--html",
                str(out / f"drift-{fmt}.html"),
                "--csv",
                str(out / f"drift-{fmt}.csv"),
            )
        )
    sandbox.faults.set(errors={500: 1.0}, echo_body=True)
    results.append(cli("--debug", "plan", str(repo)))
    written = everything_written(results, out)
    assert "DEBUG reconciler.client" in written  # the debug logs were captured
    for secret in secrets_of(sandbox):
        assert secret not in written, "a secret value leaked into the output"


def test_github_actions_masks_every_secret_before_printing_anything_else(
    sandbox, repo, cli, tmp_path, monkeypatch
):
    """With GITHUB_ACTIONS=true a secret may appear only on an `::add-mask::` line,
    printed on stderr the moment it is resolved: before any other line of the
    run. stdout holds the report alone, so `--format json` output stays JSON."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    plan = cli("--debug", "plan", str(repo), "--format", "markdown")
    apply = cli("--debug", "apply", str(repo), "--auto-approve", "--test-email", "ops@example.com")
    assert apply.code == 0, apply
    sandbox.break_password("tenant-003")
    sandbox.faults.set(echo_body=True)
    rotate = cli("--debug", "apply", str(repo), "--auto-approve", "--rotate-secrets")
    drift = cli("--debug", "drift", str(repo), "--verify", "--format", "json")
    resolved = [t.api_key for t in sandbox.tenants] + [
        sandbox.tenant("tenant-001").smtp_password,
        sandbox.tenant("tenant-002").m365_client_secret,
    ]
    assert json.loads(drift.stdout)  # nothing but the report on stdout
    for result in (plan, apply, rotate, drift):
        assert "::add-mask::" not in result.stdout
        lines = result.stderr.splitlines()
        masks = [i for i, line in enumerate(lines) if line.startswith("::add-mask::")]
        for secret in secrets_of(sandbox):
            assert secret not in result.stdout
            for line in lines:
                assert secret not in line or line == f"::add-mask::{secret}", line
        # The API keys are resolved before any tenant is read, so before any request
        # could be logged (--debug) and before any progress line.
        assert masks[: len(sandbox.tenants)] == list(range(len(sandbox.tenants)))
    for result in (apply, rotate):
        lines = result.stderr.splitlines()
        for secret in resolved:
            assert f"::add-mask::{secret}" in lines
