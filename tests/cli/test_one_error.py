"""One error, one message: a mistake in the root file is reported once, and the
checks that depend on the root's settings are skipped with one note instead of
failing every tenant."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.jsonschemas import schema_errors

TYPO = """drift:
  ignore:
    - {tenant: "tenant-*", feild: senderName, reason: rebrand, expires: 2026-12-31}
"""


def test_a_root_file_typo_is_one_error_and_one_note(cli, sandbox, repo: Path):
    root = repo / "qlik-email.yaml"
    root.write_text(root.read_text() + TYPO)
    result = cli("validate", str(repo))
    assert result.code == 1, result
    errors = [line for line in result.stderr.splitlines() if "qlik-email.yaml:" in line]
    assert len(errors) == 1 and "feild" in errors[0], result.stderr
    assert "1 error in the configuration" in result.stderr
    assert "not an allowed tenant host" not in result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("Note:")]
    assert len(notes) == 1 and "settings.allowedHosts" in notes[0], result.stderr
    assert "tenants/" not in result.stderr
    # plan refuses the same way, before contacting any tenant.
    planned = cli("plan", str(repo))
    assert planned.code == 1 and "not an allowed tenant host" not in planned.stderr
    assert sandbox.request_log == []


def test_tenant_errors_of_their_own_are_still_reported(cli, sandbox, repo: Path):
    root = repo / "qlik-email.yaml"
    root.write_text(root.read_text() + TYPO)
    name = sandbox.tenants[2].name  # a BasicAuth tenant (the second is Microsoft 365)
    tenant = repo / "tenants" / f"{name}.yaml"
    tenant.write_text(tenant.read_text().replace("senderName:", "sendrName:"))
    result = cli("validate", str(repo))
    assert result.code == 1 and "2 errors in the configuration" in result.stderr, result
    assert f"tenants/{name}.yaml:" in result.stderr and "sendrName" in result.stderr


def test_with_a_sound_root_file_host_checks_still_run(cli, sandbox, repo: Path):
    root = repo / "qlik-email.yaml"
    root.write_text(root.read_text().replace('- "127.0.0.1"', '- "*.qlikcloud.com"'))
    result = cli("validate", str(repo))
    assert result.code == 1 and "Note:" not in result.stderr, result
    assert result.stderr.count("is not an allowed tenant host") == len(sandbox.tenants)


def test_the_note_is_in_the_json_document_too(cli, sandbox, repo: Path):
    root = repo / "qlik-email.yaml"
    root.write_text(root.read_text() + TYPO)
    result = cli("validate", str(repo), "--format", "json")
    document = json.loads(result.stdout)
    assert result.code == 1 and schema_errors("validation.schema.json", document) == []
    assert len(document["errors"]) == 1 and len(document["notes"]) == 1
