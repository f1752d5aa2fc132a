"""Onboarding with `import --add`, and a whole-fleet import that validates as
written: shared values in `defaults`, non-default hosts in `allowedHosts`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

SAFETY = "  safety: {maxChanges: 50, maxDeletes: 1}\n"


def plan_json(cli, directory: Path) -> dict:
    result = cli("plan", str(directory), "--format", "json")
    assert result.code == 0, result
    return json.loads(result.stdout)


def set_secret_refs(sandbox, monkeypatch) -> None:
    for tenant in sandbox.tenants:
        prefix = tenant.name.upper().replace("-", "_")
        monkeypatch.setenv(f"{prefix}_SMTP_PASSWORD", tenant.smtp_password)


@pytest.fixture
def onboarding(sandbox, repo: Path) -> tuple[Path, str]:
    """The repository without its last tenant, which is configured by hand on
    the SMTP server the root's defaults name; the root file has safety settings."""
    newcomer = sandbox.tenants[-1].name
    (repo / "tenants" / f"{newcomer}.yaml").unlink()
    root = repo / "qlik-email.yaml"
    root.write_text(root.read_text() + SAFETY)
    sandbox.seed(newcomer, sandbox.basic_auth_body(newcomer))
    return repo, newcomer


def test_add_writes_only_the_new_tenant_without_the_defaults(cli, sandbox, onboarding, monkeypatch):
    repo, name = onboarding
    root_before = (repo / "qlik-email.yaml").read_bytes()
    others = {p.name: p.read_bytes() for p in (repo / "tenants").iterdir()}
    url = sandbox.tenant(name).url
    key = f"${{file:.secrets/{name}.apikey}}"
    result = cli("import", str(repo), "--add", "--tenant", f"{name}={url}", "--api-key-ref", key)
    assert result.code == 0, result
    assert "qlik-email.yaml unchanged" in result.stdout
    assert (repo / "qlik-email.yaml").read_bytes() == root_before
    assert {p.name: p.read_bytes() for p in (repo / "tenants").iterdir() if p.name in others} == (
        others
    )
    written = yaml.safe_load((repo / "tenants" / f"{name}.yaml").read_text())
    assert written["auth"] == {"apiKey": key}  # the root has no defaults.auth
    # provider, server, port and security come from the root's defaults.
    assert set(written["email"]) == {"username", "password", "emailAddress", "senderName"}
    assert cli("validate", str(repo)).code == 0
    set_secret_refs(sandbox, monkeypatch)
    plan = plan_json(cli, repo)
    assert next(t for t in plan["tenants"] if t["name"] == name)["action"] == "no-op"


def test_add_leaves_out_an_auth_equal_to_defaults_auth(cli, sandbox, onboarding, monkeypatch):
    repo, name = onboarding
    monkeypatch.setenv("FLEET_KEY", sandbox.tenant(name).api_key)
    root = repo / "qlik-email.yaml"
    root.write_text(
        root.read_text().replace(
            "defaults:\n", "defaults:\n  auth:\n    apiKey: ${env:FLEET_KEY}\n"
        )
    )
    url = sandbox.tenant(name).url
    added = cli("import", str(repo), "--add", "--tenant", f"{name}={url}")
    assert added.code == 0, added
    assert "auth" not in yaml.safe_load((repo / "tenants" / f"{name}.yaml").read_text())
    assert cli("validate", str(repo)).code == 0


def test_add_refuses_a_tenant_already_there_and_contacts_nothing(cli, sandbox, repo):
    first = sandbox.tenants[0]
    before = sorted(p.name for p in (repo / "tenants").iterdir())
    sandbox.reset_stats()
    result = cli(
        "import",
        str(repo),
        "--add",
        "--tenant",
        f"{first.name}={first.url}",
        "--api-key-ref",
        "${env:X}",
    )
    assert result.code == 1 and "already in the repository" in result.stderr, result
    assert sandbox.request_log == []
    assert sorted(p.name for p in (repo / "tenants").iterdir()) == before


def test_add_needs_a_repository_and_never_forces(cli, sandbox, tmp_path):
    tenant = sandbox.tenants[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    option = f"{tenant.name}={tenant.url}"
    missing = cli("import", str(empty), "--add", "--tenant", option)
    assert missing.code == 1 and "--add adds tenants to an existing repository" in missing.stderr
    forced = cli("import", str(empty), "--add", "--force", "--tenant", option)
    assert forced.code == 1 and "--add never overwrites" in forced.stderr


def test_a_whole_fleet_import_shares_defaults_and_validates_as_written(
    cli, sandbox, tmp_path, monkeypatch
):
    for tenant in sandbox.tenants:
        sandbox.seed(tenant.name, sandbox.basic_auth_body(tenant.name, security="SSL/TLS"))
    rows = ["name,url,apiKey"]
    for index, tenant in enumerate(sandbox.tenants):
        monkeypatch.setenv(f"SBX_KEY_{index}", tenant.api_key)
        rows.append(f"{tenant.name},{tenant.url},${{env:SBX_KEY_{index}}}")
    inventory = tmp_path / "tenants.csv"
    inventory.write_text("\n".join(rows) + "\n")
    out = tmp_path / "config"
    monkeypatch.setenv("QLIK_EMAIL_ALLOWED_HOSTS", "127.0.0.1")  # to contact the sandbox
    assert cli("import", str(out), "--inventory", str(inventory)).code == 0
    monkeypatch.delenv("QLIK_EMAIL_ALLOWED_HOSTS")
    root = yaml.safe_load((out / "qlik-email.yaml").read_text())
    assert root["defaults"]["email"] == {
        "provider": "BasicAuth",
        "serverAddress": sandbox.smtp_host,
        "serverPort": sandbox.smtp_ports["SSL/TLS"],
        "securityType": "SSL/TLS",
    }
    assert root["settings"]["allowedHosts"] == [
        "*.qlikcloud.com",
        "*.qlikcloudgov.com",
        "127.0.0.1",
    ]
    first = yaml.safe_load((out / "tenants" / f"{sandbox.tenants[0].name}.yaml").read_text())
    assert "serverAddress" not in first["email"] and "provider" not in first["email"]
    validated = cli("validate", str(out))
    assert validated.code == 0, validated
    set_secret_refs(sandbox, monkeypatch)
    assert all(t["action"] == "no-op" for t in plan_json(cli, out)["tenants"])
