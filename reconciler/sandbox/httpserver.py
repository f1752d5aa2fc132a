"""A small HTTP/1.1 server on asyncio, built to never be the bottleneck.

Why not `http.server`: measured on this project's 2-core machines, the
stdlib servers drop bursts of connections (`socketserver`'s listen backlog of
5 sends clients into 1-3 s SYN retries) and, writing headers and body
separately with Nagle on, add ~40 ms to every keep-alive response. Here:

- one `asyncio.Protocol` per connection, keep-alive by default, pipelining
  answered in order;
- a listen backlog of 2048 and TCP_NODELAY on every accepted socket;
- each response is one `transport.write` (head and body together);
- the application answers synchronously when it can (`dispatch` returns a
  `Response`) and only schedules a task when it must wait (latency, stalls,
  SMTP validation), which keeps plain GETs cheap.

The application contract is `dispatch(request) -> Response | Awaitable[Response]`;
`Response.reset()` asks for the connection to be dropped without an answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import struct
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
BACKLOG = 2048


@dataclass(slots=True)
class Request:
    """A parsed request. Header names are lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    # time.monotonic() when its first bytes were read: injected latency counts
    # from here, so time spent queued behind other requests is not added to it.
    received: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class Response:
    """A response to write; `drop` means: close the connection, answer nothing."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop: bool = False

    @classmethod
    def json(
        cls, status: int, document: Any, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        body = json.dumps(document, separators=(",", ":")).encode()
        return cls(status, body, [("Content-Type", "application/json"), *(headers or [])])

    @classmethod
    def error(
        cls, status: int, code: str, title: str, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        """The API's error shape: `{"errors": [{"code", "title"}]}`."""
        return cls.json(status, {"errors": [{"code": code, "title": title}]}, headers)

    @classmethod
    def reset(cls) -> Response:
        return cls(0, drop=True)


class Application(Protocol):
    """What the server calls for each request."""

    def dispatch(self, request: Request) -> Response | Awaitable[Response]: ...


class _DateCache:
    """The Date header, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def get(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._value = now, formatdate(now, usegmt=True)
        return self._value


_REASONS = {s.value: s.phrase for s in HTTPStatus}


class HttpServer:
    """Serves an `Application` on one port of the running event loop."""

    def __init__(self, app: Application | None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.date = _DateCache()
        self.connections: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._socket: socket.socket | None = None
        # Set to serve HTTPS (transport-security tests); None serves plain HTTP.
        self.ssl: ssl.SSLContext | None = None

    def bind(self) -> int:
        """Bind the listening socket now (so the port is known); returns the port."""
        if self._socket is None:
            # create_server also sets SO_REUSEADDR, so a restart on a fixed port works.
            self._socket = socket.create_server((self.host, self.port), backlog=BACKLOG)
            self.port = self._socket.getsockname()[1]
        return self.port

    async def start(self) -> int:
        """Start serving on the running loop (binding first if needed); returns the port."""
        self.bind()
        assert self._socket is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), sock=self._socket, backlog=BACKLOG, ssl=self.ssl
        )
        return self.port

    def close(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        elif self._socket is not None:
            self._socket.close()
        self._socket = None
        for connection in list(self.connections):
            connection.abort()


class _Connection(asyncio.Protocol):
    """One client connection: parse, dispatch, answer, repeat."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._arrived = 0.0
        self._busy = False
        self._closed = False
        self._continued = False
        # A reference keeps the pending task alive (the loop holds only a weak one).
        self._task: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        # A pending handler is left to finish (a PUT the client gave up on
        # still lands, as on a real server); its answer is then discarded.
        self._closed = True
        self._server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if not self._buffer:
            self._arrived = time.monotonic()
        self._buffer += data
        if not self._busy:
            self._process()

    def abort(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.abort()

    def _process(self) -> None:
        while not self._busy and not self._closed:
            request = self._parse()
            if request is None:
                return
            app = self._server.app
            try:
                result = (
                    app.dispatch(request)
                    if app is not None
                    else Response.error(503, "HTTP-2", "The sandbox is starting")
                )
            except Exception:
                log.exception("sandbox application error")
                result = Response.error(500, "INTERNAL-1", "Internal error in the sandbox")
            if isinstance(result, Response):
                self._answer(request, result)
            else:
                self._busy = True
                self._task = asyncio.ensure_future(self._complete(request, result))

    async def _complete(self, request: Request, pending: Awaitable[Response]) -> None:
        try:
            response = await pending
        except Exception:
            log.exception("sandbox application error")
            response = Response.error(500, "INTERNAL-1", "Internal error in the sandbox")
        self._busy = False
        self._task = None
        if not self._closed:
            self._answer(request, response)
            self._process()

    def _parse(self) -> Request | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._fail(431, "Request header fields too large")
            return None
        try:
            lines = self._buffer[:end].decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
        except ValueError:
            self._fail(400, "Malformed request")
            return None
        if "transfer-encoding" in headers:
            self._fail(411, "Chunked request bodies are not supported; send Content-Length")
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            self._fail(413, "Request body too large")
            return None
        total = end + 4 + length
        if len(self._buffer) < total:
            # The head is parsed again as more body arrives: answer `Expect` once.
            expects = headers.get("expect", "").lower() == "100-continue"
            if expects and not self._continued and self._transport is not None:
                self._continued = True
                self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        self._continued = False
        body = bytes(self._buffer[end + 4 : total])
        del self._buffer[:total]
        path, _, query = target.partition("?")
        if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
            headers["connection"] = "close"
        return Request(method, path, query, headers, body, self._arrived)

    def _answer(self, request: Request, response: Response) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        if response.drop:
            self._reset(transport)
            return
        keep_alive = request.headers.get("connection", "").lower() != "close"
        transport.write(self._encode(response, keep_alive))
        if not keep_alive:
            self._closed = True
            transport.close()

    def _encode(self, response: Response, keep_alive: bool) -> bytes:
        status = response.status
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        head += [f"{name}: {value}" for name, value in response.headers]
        if status != 204 and status >= 200:
            head.append(f"Content-Length: {len(response.body)}")
        head.append(f"Date: {self._server.date.get()}")
        head.append("Server: qlik-email-sandbox")
        if not keep_alive:
            head.append("Connection: close")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body

    def _reset(self, transport: asyncio.Transport) -> None:
        # SO_LINGER 0 makes close() send a RST: the client sees a reset, not
        # a polite end of stream.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._closed = True
        transport.abort()

    def _fail(self, status: int, title: str) -> None:
        response = Response.error(status, "HTTP-1", title)
        if self._transport is not None:
            self._transport.write(self._encode(response, keep_alive=False))
            self._transport.close()
        self._closed = True
