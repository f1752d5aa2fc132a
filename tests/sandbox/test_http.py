"""The sandbox's HTTP server on the wire: raw bytes in, raw bytes out."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Iterator
from http.client import HTTPResponse
from typing import Any

import pytest
from aiohttp import web

from reconciler.sandbox import Sandbox
from reconciler.sandbox.httpserver import MAX_BODY_BYTES, HttpServer
from reconciler.sandbox.loop import BackgroundLoop
from reconciler.sandbox.messages import Reply, Request, Response, Streamed

EMAIL_CONFIG = "/api/v1/transports/email-config"


class Echo:
    """Answers what it was sent; `/slow` streams its body in pieces."""

    def dispatch(self, request: Request) -> Reply | Awaitable[Reply]:
        if request.path == "/slow":
            return Streamed(200, _slow_body, [("Content-Type", "text/plain")])
        return Response.json(
            200,
            {
                "tags": request.headers.getall("X-Tag", []),
                "body": request.body.decode(),
                "query": request.query,
            },
        )


async def _slow_body(response: web.StreamResponse) -> None:
    for part in (b"one ", b"two ", b"three"):
        await response.write(part)
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = HttpServer(Echo())
    loop = BackgroundLoop("test-http")

    async def serve() -> None:
        await server.start()

    async def close() -> None:
        server.close()

    loop.start(serve)
    yield server.port
    loop.stop(close)


def exchange(port: int, raw: bytes) -> tuple[HTTPResponse, bytes]:
    """Send raw bytes, read one response (head and whole body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        response = HTTPResponse(sock)
        response.begin()
        return response, response.read()


def test_repeated_headers_all_reach_the_handler(port: int) -> None:
    raw = b"GET /?a=1 HTTP/1.1\r\nHost: x\r\nX-Tag: one\r\nx-tag: two\r\nX-TAG: three\r\n\r\n"
    response, body = exchange(port, raw)
    assert response.status == 200
    assert json.loads(body) == {"tags": ["one", "two", "three"], "body": "", "query": "a=1"}
    assert response.getheader("Server") == "qlik-email-sandbox"


def test_a_chunked_body_is_read_in_full(port: int) -> None:
    raw = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
    )
    response, body = exchange(port, raw)
    assert (response.status, json.loads(body)["body"]) == (200, "hello world")


def test_a_chunked_body_over_the_limit_is_refused(port: int) -> None:
    chunk = b"x" * 65536
    size = f"{len(chunk):x}".encode()
    chunks = (size + b"\r\n" + chunk + b"\r\n") * (MAX_BODY_BYTES // len(chunk) + 1)
    raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    response, body = exchange(port, raw + b"0\r\n\r\n")
    assert response.status == 413
    assert json.loads(body)["errors"][0]["code"] == "HTTP-1"
    assert response.getheader("Connection") == "close"


def test_a_declared_length_over_the_limit_is_refused_before_the_body(port: int) -> None:
    # The body is never sent: the answer must not wait for it.
    raw = f"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    response, _ = exchange(port, raw.encode())
    assert (response.status, response.getheader("Connection")) == (413, "close")


def test_expect_continue_is_answered_before_the_body(port: int) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"ok")
        response = HTTPResponse(sock)
        response.begin()
        assert json.loads(response.read())["body"] == "ok"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 200 + b"\r\n", 400),
    ],
    ids=["malformed", "header-too-long", "too-many-headers"],
)
def test_unparsable_requests_get_the_api_error_shape(port: int, raw: bytes, status: int) -> None:
    response, body = exchange(port, raw)
    assert response.status == status
    assert json.loads(body)["errors"][0]["code"] == "HTTP-1"


def test_a_streamed_body_arrives_piece_by_piece(port: int) -> None:
    started = time.perf_counter()
    response, body = exchange(port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (response.status, body) == (200, b"one two three")
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert time.perf_counter() - started >= 0.14


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(tenants=2, seed=5, rate_limits=False) as sandbox:
        yield sandbox


def _put_chunked(sb: Sandbox, document: dict[str, Any]) -> bytes:
    tenant = sb.tenants[0]
    body = json.dumps(document).encode()
    half = len(body) // 2
    chunks = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:half], body[half:]))
    head = (
        f"PUT /t/{tenant.name}{EMAIL_CONFIG} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {tenant.api_key}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    return head.encode() + chunks + b"0\r\n\r\n"


def test_the_sandbox_takes_a_chunked_put(sb: Sandbox) -> None:
    name = sb.tenants[0].name
    port = int(sb.base_url.rsplit(":", 1)[1])
    response, _ = exchange(port, _put_chunked(sb, sb.basic_auth_body(name, senderName="Chunked")))
    assert response.status == 204
    config = sb.live_config(name)
    assert config is not None and config["providerConfig"]["senderName"] == "Chunked"


def test_a_broken_chunked_body_is_a_bad_request(port: int) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw = head + b"zz\r\nhello\r\n0\r\n\r\n"
    response, body = exchange(port, raw)
    assert response.status == 400
    assert json.loads(body)["errors"][0]["code"] == "HTTP-1"
