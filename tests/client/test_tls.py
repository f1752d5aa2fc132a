"""The process's SSL context (reconciler.client.tls): built once, on first use,
always verifying, rebuilt when the CA settings change."""

from __future__ import annotations

import shutil
import ssl
import threading
from pathlib import Path

import certifi
import pytest

from reconciler.client import tls
from reconciler.errors import ReconcilerError


@pytest.fixture(autouse=True)
def ca_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_the_context_is_built_once_on_first_use_without_a_thread(
    tmp_path: Path, monkeypatch
) -> None:
    bundle = tmp_path / "ca.pem"
    shutil.copy(certifi.where(), bundle)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # settings no other test has used
    threads = threading.active_count()
    context = tls.shared()
    assert threading.active_count() == threads
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert tls.shared() is context  # built once
    assert not hasattr(tls, "warm")


def test_a_change_of_ca_settings_builds_a_new_context(tmp_path: Path, monkeypatch) -> None:
    first = tls.shared()
    bundle = tmp_path / "other.pem"
    shutil.copy(certifi.where(), bundle)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    second = tls.shared()
    assert second is not first
    bundle.write_bytes(bundle.read_bytes() + b"\n")  # the same path, new contents
    assert tls.shared() is not second


def test_an_unreadable_bundle_fails_when_the_context_is_needed(monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    with pytest.raises(ReconcilerError, match="cannot load the CA certificates from /nonexistent"):
        tls.shared()
    with pytest.raises(ReconcilerError, match="cannot load the CA certificates"):
        tls.shared()


def test_the_ssl_context_uses_the_ca_bundle_from_the_environment() -> None:
    context = tls.default_context({"SSL_CERT_FILE": certifi.where()})
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    with pytest.raises(ReconcilerError, match="cannot load the CA certificates"):
        tls.default_context({"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"})
