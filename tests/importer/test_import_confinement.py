"""`qlik-email import` writes only inside OUTDIR, never through a symbolic link,
only files that validate, each atomically: driven through the real CLI against
a sandbox whose answers may be hostile."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import run_cli


@pytest.fixture(autouse=True)
def loopback_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tenants here are on 127.0.0.1: a host only an allowed-host list names."""
    monkeypatch.setenv("QLIK_EMAIL_ALLOWED_HOSTS", "127.0.0.1")


TENANT = "tenant-001"


def _import(sandbox, out: Path, monkeypatch, *extra: str):
    tenant = sandbox.tenant(TENANT)
    monkeypatch.setenv("QLIK_API_KEY", tenant.api_key)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    return run_cli("import", str(out), "--tenant", f"{TENANT}={tenant.url}", *extra)


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() or p.is_symlink())


def _assert_safe(text: str) -> None:
    """Only our own workflow commands (annotations, masks) start a line with `::`."""
    for line in text.split("\n"):
        assert line.isprintable(), repr(line)
        if line.startswith("::"):
            assert line.startswith(("::error file=", "::add-mask::")), repr(line)


def test_force_does_not_write_through_a_symlinked_tenant_file(sandbox, tmp_path, monkeypatch):
    sandbox.seed(TENANT, sandbox.basic_auth_body(TENANT))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "config"
    (out / "tenants").mkdir(parents=True)
    (out / "tenants" / f"{TENANT}.yaml").symlink_to(victim)
    sandbox.reset_stats()
    result = _import(sandbox, out, monkeypatch, "--force")
    assert result.code == 1, result
    assert "symbolic link; import never writes through one" in result.stderr
    assert victim.read_text() == "keep me\n"
    assert not (out / "qlik-email.yaml").exists()
    assert not sandbox.request_log  # refused before any tenant is contacted


def test_a_dangling_symlink_is_refused_without_force_too(sandbox, tmp_path, monkeypatch):
    out = tmp_path / "config"
    (out / "tenants").mkdir(parents=True)
    (out / "tenants" / f"{TENANT}.yaml").symlink_to(tmp_path / "created-outside.yaml")
    result = _import(sandbox, out, monkeypatch)
    assert result.code == 1, result
    assert "symbolic link" in result.stderr
    assert not (tmp_path / "created-outside.yaml").exists()


def test_a_symlinked_tenants_directory_is_refused(sandbox, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "config"
    out.mkdir()
    (out / "tenants").symlink_to(elsewhere)
    result = _import(sandbox, out, monkeypatch, "--force")
    assert result.code == 1, result
    assert "symbolic link" in result.stderr
    assert list(elsewhere.iterdir()) == []
    assert not (out / "qlik-email.yaml").exists()


def test_a_symlinked_root_file_is_refused(sandbox, tmp_path, monkeypatch):
    victim = tmp_path / "victim.yaml"
    victim.write_text("keep me\n")
    out = tmp_path / "config"
    out.mkdir()
    (out / "qlik-email.yaml").symlink_to(victim)
    result = _import(sandbox, out, monkeypatch, "--force")
    assert result.code == 1, result
    assert victim.read_text() == "keep me\n"


class _HostileTenant(BaseHTTPRequestHandler):
    """A tenant server whose e-mail configuration holds whatever `config` says."""

    config: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:  # the name BaseHTTPRequestHandler calls
        body = json.dumps(
            {"serviceProvider": "BasicAuth", "providerConfig": self.config, "passwordExists": True}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hostile_tenant():
    """The URL of a tenant server answering `_HostileTenant.config`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileTenant)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


GOOD = {
    "serverAddress": "smtp.example.com",
    "serverPort": 587,
    "securityType": "StartTLS",
    "username": "qlik",
    "emailAddress": "qlik@acme.example",
}


@pytest.mark.parametrize(
    "values",
    [
        {"emailAddress": "x\n::error file=evil.yaml::forged"},
        {"emailAddress": "\x1b]8;;https://evil.example\x07\x1b[2J" + "x" * 300 + "@a"},
        {"serverAddress": "smtp.\u202eelpmaxe.com"},
        {"serverPort": 0},
        {"securityType": "\n::stop-commands::token"},
    ],
    ids=["newline", "escape-sequences", "bidi", "port-zero", "stop-commands"],
)
def test_hostile_live_values_write_nothing(hostile_tenant, tmp_path, monkeypatch, values):
    _HostileTenant.config = {**GOOD, **values}
    out = tmp_path / "config"
    monkeypatch.setenv("QLIK_API_KEY", "any-key")
    monkeypatch.setenv("QLIK_EMAIL_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = run_cli("import", str(out), "--tenant", f"evil={hostile_tenant}")
    assert result.code == 1, result
    assert "cannot be written as valid files; nothing was written" in result.stderr
    assert "tenants/evil.yaml:" in result.stderr
    assert not out.exists()
    _assert_safe(result.stdout + result.stderr)
    assert "x" * 61 not in result.stderr


def test_hostile_values_the_language_accepts_are_written_escaped(
    hostile_tenant, tmp_path, monkeypatch
):
    _HostileTenant.config = {**GOOD, "senderName": "\x1b[2J\n::error::x\u202e" + "y" * 300}
    out = tmp_path / "config"
    monkeypatch.setenv("QLIK_API_KEY", "any-key")
    monkeypatch.setenv("QLIK_EMAIL_ALLOWED_HOSTS", "127.0.0.1")
    result = run_cli("import", str(out), "--tenant", f"evil={hostile_tenant}")
    assert result.code == 0, result
    _assert_safe(result.stdout + result.stderr)
    text = (out / "tenants" / "evil.yaml").read_text()
    assert all(char.isprintable() for line in text.splitlines() for char in line)
    assert run_cli("validate", str(out)).code == 0


def test_hostile_tenant_names_are_refused_before_any_write(sandbox, tmp_path, monkeypatch):
    tenant = sandbox.tenant(TENANT)
    monkeypatch.setenv("QLIK_API_KEY", tenant.api_key)
    out = tmp_path / "deep" / "config"
    inventory = tmp_path / "tenants.csv"
    inventory.write_text(f"name,url\n../evil,{tenant.url}\n.hidden,{tenant.url}/x\n")
    for argv in (
        ["--tenant", f"../evil={tenant.url}"],
        ["--tenant", f"a/b={tenant.url}"],
        ["--inventory", str(inventory)],
    ):
        result = run_cli("import", str(out), *argv)
        assert result.code == 1, result
        assert "must be 1 to 63 letters" in result.stderr
    assert not (tmp_path / "deep").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tenants.csv"]


def test_a_valid_import_replaces_files_atomically_and_leaves_no_temporary_file(
    sandbox, tmp_path, monkeypatch
):
    sandbox.seed(TENANT, sandbox.basic_auth_body(TENANT))
    out = tmp_path / "config"
    (out / "tenants").mkdir(parents=True)
    existing = out / "tenants" / f"{TENANT}.yaml"
    existing.write_text("# old\n")
    # A hard link to the old file: written in place, it would change as well.
    os.link(existing, tmp_path / "hard-link.yaml")
    result = _import(sandbox, out, monkeypatch, "--force")
    assert result.code == 0, result
    assert existing.read_text().startswith("# yaml-language-server")
    assert (tmp_path / "hard-link.yaml").read_text() == "# old\n"
    assert [p.relative_to(out).as_posix() for p in _files(out)] == [
        "qlik-email.yaml",
        f"tenants/{TENANT}.yaml",
    ]
    assert run_cli("validate", str(out)).code == 0
