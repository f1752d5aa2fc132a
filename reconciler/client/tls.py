"""The client's SSL context: always verifying, built once per process.

Loading a CA bundle (certifi's has ~150 certificates) is costly (bench/NOTES.md),
so the context is built on first use and kept for the life of the process
(forked readers inherit it). It is rebuilt only if the CA settings in the
environment change.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

from reconciler.errors import ReconcilerError

_Key = tuple[str | None, str | None, tuple[int, int] | None]

_built: dict[_Key, ssl.SSLContext | ReconcilerError] = {}


def default_context(env: Mapping[str, str] = os.environ) -> ssl.SSLContext:
    """A new verifying SSL context: the CA bundle named by SSL_CERT_FILE, SSL_CERT_DIR or
    REQUESTS_CA_BUNDLE when set, else certifi's when installed, else the system's."""
    cafile, capath = _locations(env)
    try:
        if cafile or capath:
            return ssl.create_default_context(cafile=cafile, capath=capath)
        try:
            import certifi
        except ImportError:
            return ssl.create_default_context()
        return ssl.create_default_context(cafile=certifi.where())
    except (OSError, ssl.SSLError) as exc:
        source = cafile or capath
        raise ReconcilerError(f"cannot load the CA certificates from {source}: {exc}") from None


def shared() -> ssl.SSLContext:
    """The process's verifying SSL context, built on first use (and again after a
    change of the CA settings). Raises ReconcilerError when the CA certificates
    cannot be loaded; the failure is remembered, like a context."""
    key = _key()
    found = _built.get(key)
    if found is None:
        try:
            found = default_context()
        except ReconcilerError as exc:
            found = exc
        _built[key] = found
    if isinstance(found, ReconcilerError):
        raise ReconcilerError(str(found))
    return found


def _locations(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    cafile = env.get("SSL_CERT_FILE") or env.get("REQUESTS_CA_BUNDLE") or None
    return cafile, env.get("SSL_CERT_DIR") or None


def _key() -> _Key:
    """Which CA settings a context was built for: the locations, and the bundle
    file's size and modification time (a test may write a new CA in place)."""
    cafile, capath = _locations(os.environ)
    try:
        info = os.stat(cafile) if cafile else None
    except OSError:
        info = None
    return cafile, capath, (info.st_size, info.st_mtime_ns) if info else None
