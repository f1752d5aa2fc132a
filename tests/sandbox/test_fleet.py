"""The Sandbox object: fleets, state behind the API's back, config, processes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner
from conftest import checked_client

from reconciler.sandbox import Sandbox
from reconciler.sandbox.cli import sandbox_command
from reconciler.sandbox.tenants import fleet_key, make_tenant

EMAIL_CONFIG = "/api/v1/transports/email-config"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(tenants=5, seed=9) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def client(sb: Sandbox) -> Iterator[httpx.Client]:
    with checked_client(sb) as http:
        yield http


def live(client: httpx.Client, sb: Sandbox, name: str) -> dict[str, object]:
    tenant = sb.tenant(name)
    response = client.get(
        tenant.url + EMAIL_CONFIG, headers={"Authorization": f"Bearer {tenant.api_key}"}
    )
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def test_ten_thousand_tenants_start_in_well_under_a_second() -> None:
    started = time.perf_counter()
    with Sandbox(tenants=10_000) as fleet:
        elapsed = time.perf_counter() - started
        last = fleet.tenant("tenant-10000")
        response = httpx.get(
            last.url + EMAIL_CONFIG,
            headers={"Authorization": f"Bearer {last.api_key}"},
            trust_env=False,
        )
    assert elapsed < 2.0  # about 0.15 s on a 2-core machine; generous for loaded CI
    assert len(fleet.tenants) == 10_000 and fleet.tenants[0].name == "tenant-00001"
    assert response.json() == {"isValid": False, "passwordExists": False}


def test_names_can_be_chosen_and_must_be_url_safe() -> None:
    with Sandbox(names=["acme", "globex"]) as fleet:
        assert [t.name for t in fleet.tenants] == ["acme", "globex"]
        assert fleet.tenant("acme").url == fleet.base_url + "/t/acme"
        assert fleet.tenant("acme").sender_name == "Acme"
    with pytest.raises(ValueError):
        Sandbox(names=["a/b"])
    with pytest.raises(ValueError):
        Sandbox(names=["a", "a"])
    with pytest.raises(KeyError):
        fleet.tenant("initech")


def test_a_seed_fixes_the_credentials() -> None:
    first = make_tenant("tenant-001", "http://x", fleet_key(42))
    again = make_tenant("tenant-001", "http://x", fleet_key(42))
    other = make_tenant("tenant-001", "http://x", fleet_key(43))
    assert first == again
    assert first.api_key != other.api_key
    assert len(set(first.secrets())) == 5


def test_an_out_of_band_edit_shows_on_the_next_get(client: httpx.Client, sb: Sandbox) -> None:
    sb.seed("tenant-001", sb.basic_auth_body("tenant-001"))
    before = live(client, sb, "tenant-001")
    sb.advance_time(1)  # so the modification time visibly moves
    sb.edit("tenant-001", senderName="Renamed", serverPort=2525)

    after = live(client, sb, "tenant-001")
    assert after["providerConfig"]["senderName"] == "Renamed"  # type: ignore[index]
    assert after["serverPort"] == 2525
    assert str(after["modificationTime"]) > str(before["modificationTime"])


def test_edit_refuses_unknown_fields_and_missing_configs(sb: Sandbox) -> None:
    sb.seed("tenant-002", sb.m365_body("tenant-002"))
    with pytest.raises(ValueError, match="serverAddress"):
        sb.edit("tenant-002", serverAddress="smtp.example.com")
    sb.seed("tenant-002", None)
    with pytest.raises(ValueError, match="seed one first"):
        sb.edit("tenant-002", senderName="x")


def test_break_password_changes_only_the_hidden_secret(client: httpx.Client, sb: Sandbox) -> None:
    sb.seed("tenant-003", sb.basic_auth_body("tenant-003"))
    before = live(client, sb, "tenant-003")
    sb.break_password("tenant-003")
    assert live(client, sb, "tenant-003") == before
    stored = sb.live_config("tenant-003")
    assert stored is not None
    assert stored["providerConfig"]["emailPassword"] != sb.tenant("tenant-003").smtp_password


def test_a_rotated_smtp_password_fails_the_stored_config_until_a_put(
    client: httpx.Client, sb: Sandbox
) -> None:
    sb.seed("tenant-003", sb.basic_auth_body("tenant-003"))
    tenant = sb.tenant("tenant-003")
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    verify = tenant.url + EMAIL_CONFIG + "/actions/verify-connection"
    sb.set_smtp_password("tenant-003", "rotated-Pa55word")
    assert sb.tenant("tenant-003").smtp_password == "rotated-Pa55word"
    assert client.post(verify, headers=headers).json()["smtpResponseCode"] == 535
    put = client.put(
        tenant.url + EMAIL_CONFIG, json=sb.basic_auth_body("tenant-003"), headers=headers
    )
    assert put.status_code == 204
    stored = sb.live_config("tenant-003")
    assert stored is not None and stored["providerConfig"]["emailPassword"] == "rotated-Pa55word"
    assert sb.health("tenant-003")["errorCode"] == "OK"


def test_seed_takes_a_put_body_with_health(client: httpx.Client, sb: Sandbox) -> None:
    body = {**sb.m365_body("tenant-004"), "isValid": False, "errorCode": "PROVIDER_ERROR"}
    sb.seed("tenant-004", {**body, "authFailures": 3})
    shown = live(client, sb, "tenant-004")
    assert (shown["isValid"], shown["errorCode"], shown["authFailures"]) == (
        False,
        "PROVIDER_ERROR",
        3,
    )
    with pytest.raises(ValueError, match="serverPort is not a number"):
        sb.seed("tenant-004", sb.basic_auth_body("tenant-004", serverPort="x"))
    with pytest.raises(ValueError, match="not a legacy field"):
        sb.seed_legacy("tenant-004", {"clientId": "x"})


def test_live_config_has_the_secret_that_get_hides(client: httpx.Client, sb: Sandbox) -> None:
    sb.seed_legacy("tenant-005", {"username": "u", "emailPassword": "legacy-secret-1"})
    stored = sb.live_config("tenant-005")
    assert stored is not None and stored["emailPassword"] == "legacy-secret-1"
    assert "legacy-secret-1" not in json.dumps(live(client, sb, "tenant-005"))
    sb.seed("tenant-005", None)
    assert sb.live_config("tenant-005") is None


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_config_makes_a_ready_repository(sb: Sandbox, tmp_path: Path) -> None:
    root = sb.write_config(tmp_path / "repo", microsoft365=("tenant-002",), absent=("tenant-003",))

    defaults = yaml.safe_load((root / "qlik-email.yaml").read_text())
    assert defaults == {
        "defaults": {
            "email": {
                "provider": "BasicAuth",
                "serverAddress": "127.0.0.1",
                "serverPort": sb.smtp_ports["StartTLS"],
                "securityType": "StartTLS",
            }
        },
        "tenants": "tenants/*.yaml",
        "settings": {"allowedHosts": ["127.0.0.1"]},
    }
    basic = yaml.safe_load((root / "tenants/tenant-001.yaml").read_text())
    tenant = sb.tenant("tenant-001")
    assert basic == {
        "name": "tenant-001",
        "url": tenant.url,
        "auth": {"apiKey": "${file:.secrets/tenant-001.apikey}"},
        "email": {
            "username": "tenant-001",
            "password": "${file:.secrets/tenant-001.smtp}",
            "emailAddress": "qlik@tenant-001.example",
            "senderName": "Tenant 001",
        },
    }
    m365 = yaml.safe_load((root / "tenants/tenant-002.yaml").read_text())["email"]
    assert m365["provider"] == "Microsoft365"
    assert m365["clientSecret"] == "${file:.secrets/tenant-002.m365}"
    assert yaml.safe_load((root / "tenants/tenant-003.yaml").read_text())["email"] == "absent"

    secrets = root / ".secrets"
    assert (secrets / "tenant-001.apikey").read_text().strip() == tenant.api_key
    assert (secrets / "tenant-001.smtp").read_text().strip() == tenant.smtp_password
    assert not (secrets / "tenant-003.smtp").exists()
    assert _mode(secrets) == 0o700
    assert {_mode(p) for p in secrets.iterdir()} == {0o600}
    assert ".secrets/" in (root / ".gitignore").read_text().splitlines()


def test_write_config_with_oauth_and_a_smaller_fleet(sb: Sandbox, tmp_path: Path) -> None:
    sb.write_config(tmp_path, auth="oauth")
    with Sandbox(tenants=2) as small:
        small.write_config(tmp_path, auth="oauth")
    assert sorted(p.name for p in (tmp_path / "tenants").iterdir()) == [
        "tenant-001.yaml",
        "tenant-002.yaml",
    ]
    auth = yaml.safe_load((tmp_path / "tenants/tenant-001.yaml").read_text())["auth"]
    assert auth == {
        "oauth": {
            "clientId": small.tenant("tenant-001").oauth_client_id,
            "clientSecret": "${file:.secrets/tenant-001.oauth}",
        }
    }
    with pytest.raises(ValueError):
        sb.write_config(tmp_path, auth="password")


def _start(command: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_serve_runs_as_a_process_until_sigterm(tmp_path: Path) -> None:
    ready_file = tmp_path / "ready.json"
    command = [sys.executable, "-m", "reconciler.sandbox", "serve", "--tenants", "2"]
    command += ["--ready-file", str(ready_file), "--write-config", str(tmp_path / "repo")]
    process = _start(command, tmp_path)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the fleet is ready
        assert line.startswith("READY "), line
        fleet = json.loads(ready_file.read_text())
        tenant = fleet["tenants"][1]
        response = httpx.get(
            tenant["url"] + EMAIL_CONFIG,
            headers={"Authorization": f"Bearer {tenant['api_key']}"},
            trust_env=False,
        )
        assert response.json() == {"isValid": False, "passwordExists": False}
        assert set(fleet["smtp_ports"]) == {"none", "StartTLS", "SSL/TLS"}
        assert (tmp_path / "repo/tenants/tenant-002.yaml").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors


def test_the_click_command_prints_the_fleet_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    code = "from reconciler.sandbox.cli import sandbox_command; sandbox_command()"
    process = _start([sys.executable, "-c", code, "--tenants", "2", "--auth", "oauth"], tmp_path)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
    finally:
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=30)
    banner = "".join(lines)
    assert process.returncode == 0, errors
    assert "printing them is intended" in banner
    assert "tenant-002  http://127.0.0.1:" in banner and "api key sbx-admin-" in banner
    assert "Sandbox stopped." in rest


def test_the_click_command_has_help() -> None:
    result = CliRunner().invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0
    assert "--write-config" in result.output and "--no-rate-limit" in result.output
