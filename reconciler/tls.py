"""The client's SSL context: always verifying, built once per process.

Loading a CA bundle (certifi's has ~150 certificates) takes ~20 ms of CPU,
during which OpenSSL does not hold the GIL. So a command that is about to
talk to tenants calls `warm()`: the context is then built in a background
thread while this one goes on (importing the HTTP stack, resolving
credentials), and `shared()` waits for it. The context is kept for the life
of the process (forked readers inherit it) and rebuilt only if the CA
settings in the environment change.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Mapping

from reconciler.errors import ReconcilerError

_Key = tuple[str | None, str | None, tuple[int, int] | None]

_lock = threading.Lock()
_built: dict[_Key, ssl.SSLContext | ReconcilerError] = {}
_warming: threading.Thread | None = None


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


def warm() -> None:
    """Start building the shared context in a background thread (no-op if built)."""
    global _warming
    with _lock:
        if _key() in _built or _warming is not None:
            return
        _warming = threading.Thread(target=_build, name="qlik-email-tls", daemon=True)
        _warming.start()


def shared() -> ssl.SSLContext:
    """The process's verifying SSL context, built now if `warm` was not called.
    Raises ReconcilerError when the CA certificates cannot be loaded."""
    global _warming
    thread = _warming
    if thread is not None:
        thread.join()
        _warming = None
    found = _built.get(_key())
    if found is None:
        _build()
        found = _built[_key()]
    if isinstance(found, ReconcilerError):
        raise ReconcilerError(str(found))
    return found


def _build() -> None:
    key = _key()
    try:
        result: ssl.SSLContext | ReconcilerError = default_context()
    except ReconcilerError as exc:
        result = exc
    with _lock:
        _built[key] = result


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
