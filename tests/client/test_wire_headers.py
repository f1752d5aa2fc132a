"""What the client puts on the wire besides the body: a request without a body
carries no Content-Type (aiohttp adds `application/octet-stream` to every POST
that lacks one), a request with one says it is JSON."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from helpers import basic

from reconciler.client import ApiKeyCredentials, ApiSession, ClientOptions
from reconciler.secrets import Secret

Seen = list[tuple[str, str, dict[str, str], bytes]]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request (method, path, headers, body) and answers `{}`."""

    seen: Seen = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        type(self).seen.append((self.command, self.path, headers, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def recording() -> Iterator[tuple[str, Seen]]:
    handler = type("Handler", (_Recorder,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/t/one", handler.seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_request_without_a_body_carries_no_content_type() -> None:
    async def calls(url: str) -> None:
        async with ApiSession(ClientOptions()) as session:
            tenant = session.tenant("one", url, ApiKeyCredentials(Secret("key-1")))
            await tenant.get_email_config()
            await tenant.verify_connection()
            await tenant.put_email_config(basic(), Secret("smtp-password"))
            await tenant.delete_email_config()

    with recording() as (url, seen):
        asyncio.run(calls(url))
    methods = [(method, path.rsplit("/", 1)[-1]) for method, path, _, _ in seen]
    assert methods == [
        ("GET", "email-config"),
        ("POST", "verify-connection"),
        ("PUT", "email-config"),
        ("DELETE", "email-config"),
    ]
    for method, path, headers, body in seen:
        if body:
            assert headers.get("content-type") == "application/json", (method, path)
        else:
            assert "content-type" not in headers, (method, path, headers)


def test_the_session_sends_its_own_transport_what_httpx_would_send() -> None:
    """The wire hands aiohttp the request without building an httpx.Request
    (`Transport.send`); an injected transport still gets httpx's. Both carry
    the same method, path, headers and body bytes (Host and Content-Length
    aside, which each side computes)."""

    async def calls(session: ApiSession, url: str) -> None:
        tenant = session.tenant("one", url, ApiKeyCredentials(Secret("key-1")))
        await tenant.get_email_config()
        await tenant.verify_connection()
        await tenant.put_email_config(basic(), Secret("smtp-pässword"))
        await tenant.delete_email_config()

    async def over_aiohttp(url: str) -> None:
        async with ApiSession(ClientOptions()) as session:
            await calls(session, url)

    injected: Seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        injected.append((request.method, request.url.raw_path.decode(), headers, request.content))
        return httpx.Response(200, json={})

    async def over_httpx() -> None:
        options = ClientOptions(transport=httpx.MockTransport(answer))
        async with ApiSession(options) as session:
            await calls(session, "http://127.0.0.1:9/t/one")

    with recording() as (url, seen):
        asyncio.run(over_aiohttp(url))
    asyncio.run(over_httpx())

    def comparable(request: tuple[str, str, dict[str, str], bytes]) -> tuple[object, ...]:
        method, path, headers, body = request
        kept = {k: v for k, v in headers.items() if k not in ("host", "content-length")}
        return method, path, kept, body

    assert len(seen) == len(injected) == 4
    assert [comparable(r) for r in seen] == [comparable(r) for r in injected]
    put_body = seen[2][3]
    assert "smtp-pässword".encode() in put_body  # UTF-8, as httpx encodes json=
