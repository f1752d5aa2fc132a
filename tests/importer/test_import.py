"""`qlik-email import`: live tenants in, configuration files out, which validate
and then plan as no-op once their secret references are set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from reconciler.client.live import normalize
from reconciler.importer import render_tenant, secret_references
from reconciler.importer.render import quote


@pytest.fixture(autouse=True)
def _sandbox_host_allowed(monkeypatch) -> None:
    # Imported files name no allowed hosts, and loopback is not allowed by default.
    monkeypatch.setenv("QLIK_EMAIL_ALLOWED_HOSTS", "127.0.0.1")


def seed_mixed_fleet(sandbox) -> None:
    """tenant-001 BasicAuth, tenant-002 Microsoft 365, tenant-003 legacy, tenant-004 none."""
    one, two, three, _ = sandbox.tenants
    sandbox.seed(one.name, sandbox.basic_auth_body(one.name, security="SSL/TLS"))
    sandbox.seed(two.name, sandbox.m365_body(two.name))
    sandbox.seed_legacy(
        three.name,
        {
            "serverAddress": sandbox.smtp_host,
            "serverPort": str(sandbox.smtp_ports["StartTLS"]),  # PATCH stored strings
            "securityType": "StartTLS",
            "username": three.smtp_username,
            "emailAddress": three.email_address,
            "emailPassword": three.smtp_password,
        },
    )


def write_inventory(sandbox, path: Path, monkeypatch) -> Path:
    """A CSV inventory with each tenant's own API key reference (set in the env)."""
    rows = ["name,url,apiKey"]
    for index, tenant in enumerate(sandbox.tenants):
        monkeypatch.setenv(f"SBX_KEY_{index}", tenant.api_key)
        rows.append(f"{tenant.name},{tenant.url},${{env:SBX_KEY_{index}}}")
    path.write_text("\n".join(rows) + "\n")
    return path


def set_secret_refs(sandbox, monkeypatch) -> None:
    """The references import wrote, set to the sandbox's real secrets."""
    for tenant in sandbox.tenants:
        prefix = tenant.name.upper().replace("-", "_")
        monkeypatch.setenv(f"{prefix}_SMTP_PASSWORD", tenant.smtp_password)
        monkeypatch.setenv(f"{prefix}_M365_CLIENT_SECRET", tenant.m365_client_secret)


def plan_json(cli, directory: Path) -> dict:
    result = cli("plan", str(directory), "--format", "json")
    assert result.code == 0, result
    return json.loads(result.stdout)


def test_imported_fleet_validates_and_plans_as_noop(cli, sandbox, tmp_path, monkeypatch):
    seed_mixed_fleet(sandbox)
    inventory = write_inventory(sandbox, tmp_path / "tenants.csv", monkeypatch)
    out = tmp_path / "config"
    result = cli("import", str(out), "--inventory", str(inventory))
    assert result.code == 0, result
    assert "2 BasicAuth (1 legacy), 1 Microsoft365, 1 without configuration" in result.stdout
    assert "${env:TENANT_001_SMTP_PASSWORD}" in result.stdout
    assert "${env:TENANT_002_M365_CLIENT_SECRET}" in result.stdout

    validated = cli("validate", str(out))
    assert validated.code == 0, validated
    assert "(2 BasicAuth, 1 Microsoft365, 1 absent)" in validated.stdout
    root = (out / "qlik-email.yaml").read_text()
    assert root.startswith("# yaml-language-server: $schema=https://")
    assert (out / "tenants" / "tenant-004.yaml").read_text().rstrip().endswith("email: absent")

    set_secret_refs(sandbox, monkeypatch)
    # Everything matches but the legacy configuration, which apply migrates with a PUT.
    changed = [t for t in plan_json(cli, out)["tenants"] if t["action"] != "no-op"]
    assert [(t["name"], [c["field"] for c in t["changes"]]) for t in changed] == [
        ("tenant-003", ["provider"])
    ]
    assert cli("apply", str(out), "--auto-approve").code == 0
    final = cli("plan", str(out), "--detailed-exitcode")
    assert final.code == 0, final
    assert "Plan: 0 to create, 0 to update, 0 to delete, 4 unchanged." in final.stdout


def test_import_without_legacy_plans_as_noop_at_once(cli, sandbox, tmp_path, monkeypatch):
    one, two = sandbox.tenants[:2]
    sandbox.seed(one.name, sandbox.basic_auth_body(one.name))
    sandbox.seed(two.name, sandbox.m365_body(two.name))
    inventory = write_inventory(sandbox, tmp_path / "tenants.csv", monkeypatch)
    out = tmp_path / "config"
    assert cli("import", str(out), "--inventory", str(inventory)).code == 0
    set_secret_refs(sandbox, monkeypatch)
    result = cli("plan", str(out), "--detailed-exitcode")
    assert result.code == 0, result


def test_import_writes_oauth_defaults_from_options(cli, sandbox, tmp_path, monkeypatch):
    tenant = sandbox.tenants[0]
    sandbox.seed(tenant.name, sandbox.basic_auth_body(tenant.name))
    monkeypatch.setenv("QLIK_CLIENT_SECRET", tenant.oauth_client_secret)
    out = tmp_path / "config"
    result = cli(
        "import",
        str(out),
        "--tenant",
        f"{tenant.name}={tenant.url}",
        "--oauth-client-id",
        tenant.oauth_client_id,
        "--oauth-secret-ref",
        "${env:QLIK_CLIENT_SECRET}",
    )
    assert result.code == 0, result
    root = yaml.safe_load((out / "qlik-email.yaml").read_text())
    assert root["defaults"]["auth"] == {
        "oauth": {"clientId": tenant.oauth_client_id, "clientSecret": "${env:QLIK_CLIENT_SECRET}"}
    }
    assert "auth" not in yaml.safe_load((out / "tenants" / f"{tenant.name}.yaml").read_text())
    assert cli("plan", str(out), "--detailed-exitcode").code == 0


def test_import_refuses_to_overwrite_and_contacts_no_tenant(cli, sandbox, tmp_path, monkeypatch):
    inventory = write_inventory(sandbox, tmp_path / "tenants.csv", monkeypatch)
    out = tmp_path / "config"
    (out / "tenants").mkdir(parents=True)
    existing = out / "tenants" / "tenant-002.yaml"
    existing.write_text("# mine\n")
    sandbox.reset_stats()
    result = cli("import", str(out), "--inventory", str(inventory))
    assert result.code == 1
    assert "refusing to overwrite" in result.stderr and "--force" in result.stderr
    assert existing.read_text() == "# mine\n"
    assert not sandbox.request_log
    forced = cli("import", str(out), "--inventory", str(inventory), "--force")
    assert forced.code == 0, forced
    assert existing.read_text().startswith("# yaml-language-server")


def test_import_writes_nothing_when_a_tenant_cannot_be_read(cli, sandbox, tmp_path, monkeypatch):
    inventory = write_inventory(sandbox, tmp_path / "tenants.csv", monkeypatch)
    monkeypatch.setenv("SBX_KEY_2", "sbx-admin-wrong")
    out = tmp_path / "config"
    result = cli("import", str(out), "--inventory", str(inventory))
    assert result.code == 1
    assert "tenant-003" in result.stderr and "nothing was written" in result.stderr
    assert not out.exists() or not any(out.rglob("*.yaml"))


def test_import_never_runs_a_command_reference(cli, sandbox, tmp_path):
    marker = tmp_path / "ran"
    tenant = sandbox.tenants[0]
    result = cli(
        "import",
        str(tmp_path / "config"),
        "--tenant",
        f"{tenant.name}={tenant.url}",
        "--api-key-ref",
        f"${{cmd:touch {marker}}}",
    )
    assert result.code == 1
    assert "command references are not run" in result.stderr
    assert not marker.exists()


def test_bad_inventory_is_reported_with_positions(cli, tmp_path):
    inventory = tmp_path / "tenants.csv"
    inventory.write_text(
        "name,url\nacme,https://acme.eu.qlikcloud.com\nbad name,https://b.eu.qlikcloud.com\n"
        "acme2,https://acme.eu.qlikcloud.com/\nplain,http://plain.example.com\n"
    )
    result = cli("import", str(tmp_path / "out"), "--inventory", str(inventory))
    assert result.code == 1
    assert "tenants.csv:3:1: tenant name 'bad name' must be" in result.stderr
    assert "tenants.csv:4:1: url https://acme.eu.qlikcloud.com is already listed" in result.stderr
    assert "tenants.csv:5:1: plain: url must use https://" in result.stderr
    assert not (tmp_path / "out").exists()


def test_yaml_inventory_with_literal_secret_is_refused(cli, tmp_path):
    inventory = tmp_path / "tenants.yaml"
    inventory.write_text(
        "- name: acme\n  url: https://acme.eu.qlikcloud.com\n  auth:\n    apiKey: hunter2\n"
        "- name: beta\n  url: https://beta.eu.qlikcloud.com\n  colour: blue\n"
    )
    result = cli("import", str(tmp_path / "out"), "--inventory", str(inventory))
    assert result.code == 1
    assert "tenants.yaml:1:3: acme: auth.apiKey must be a secret reference" in result.stderr
    assert "hunter2" not in result.stderr
    assert "tenants.yaml:7:3: unknown key 'colour'" in result.stderr


def test_import_needs_tenants_and_one_kind_of_auth(cli, tmp_path):
    assert "--inventory FILE or --tenant" in cli("import", str(tmp_path)).stderr
    both = cli(
        "import",
        str(tmp_path),
        "--tenant",
        "a=https://a.eu.qlikcloud.com",
        "--api-key-ref",
        "${env:K}",
        "--oauth-client-id",
        "x",
    )
    assert both.code == 1 and "not both" in both.stderr


@pytest.mark.parametrize(
    "text", ["plain", 'quo"te \\ back', "tab\there", "line\u2028sep", "emoji \U0001f600", "#x: y"]
)
def test_quoted_values_read_back_exactly(text):
    assert yaml.safe_load(f"value: {quote(text)}") == {"value": text}


def test_colliding_secret_reference_names_get_a_digest():
    names = secret_references(["a-b", "a.b", "c"])
    assert names["c"] == "c"
    assert names["a-b"] != names["a.b"] and names["a-b"].startswith("a-b-")


def test_missing_live_fields_and_secret_are_called_out():
    live = normalize(
        {
            "serviceProvider": "BasicAuth",
            "providerConfig": {"serverAddress": "smtp.example.com", "serverPort": 25},
            "passwordExists": False,
        }
    )
    tenant = render_tenant("acme", "https://acme.eu.qlikcloud.com", None, live)
    assert "# The tenant reports no password" in tenant.text
    assert "has no securityType, username, emailAddress: fill it in." in tenant.text
    assert tenant.secret_ref == "${env:ACME_SMTP_PASSWORD}"
    assert yaml.safe_load(tenant.text)["email"]["serverPort"] == 25


def test_import_contacts_no_host_that_validate_would_refuse(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("QLIK_EMAIL_ALLOWED_HOSTS", raising=False)
    result = cli("import", str(tmp_path / "out"), "--tenant", "evil=https://evil.example.com")
    assert result.code == 1
    assert "not an allowed tenant host: evil (https://evil.example.com)" in result.stderr
    assert "nothing was contacted" in result.stderr
    assert not (tmp_path / "out").exists()
