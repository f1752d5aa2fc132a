"""A server on 127.0.0.1 that catches whatever a hostile configuration makes the
tool send it: every request, with its method, path and headers (where a stolen
credential would be). Shared by the tests of `--base` and the red-team tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Attacker:
    """A server on 127.0.0.1 that answers 200 to everything and records every
    request: method, path and headers (where a stolen credential would be)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                seen.append((self.command, self.path, headers))
                body = b'{"access_token": "x", "expires_in": 3600, "token_type": "bearer"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/t/collector"

    def credentials(self) -> list[str]:
        """Every Authorization header received."""
        return [h["authorization"] for _, _, h in self.requests if "authorization" in h]


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    server = Attacker()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
