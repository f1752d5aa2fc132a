"""The process's SSL context: built once (in the background when warmed up),
always verifying, rebuilt when the CA settings change."""

from __future__ import annotations

import shutil
import ssl
import threading
from pathlib import Path

import certifi
import pytest

from reconciler import tls
from reconciler.errors import ReconcilerError


@pytest.fixture(autouse=True)
def ca_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_warm_builds_in_the_background_and_shared_waits_for_it(tmp_path: Path, monkeypatch) -> None:
    bundle = tmp_path / "ca.pem"
    shutil.copy(certifi.where(), bundle)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # settings no other test has used
    threads = threading.active_count()
    tls.warm()
    tls.warm()  # a second call while the first is under way starts nothing
    assert threading.active_count() <= threads + 1
    context = tls.shared()
    assert threading.active_count() == threads  # the helper thread has ended
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert tls.shared() is context  # built once


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
    tls.warm()  # says nothing yet: the error belongs to the command that needs TLS
    with pytest.raises(ReconcilerError, match="cannot load the CA certificates from /nonexistent"):
        tls.shared()
    with pytest.raises(ReconcilerError, match="cannot load the CA certificates"):
        tls.shared()
