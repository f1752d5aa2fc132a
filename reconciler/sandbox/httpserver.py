"""The sandbox's HTTP server: aiohttp's low-level server around one application.

aiohttp does the HTTP/1.1 work: parsing (repeated headers kept, chunked
bodies, pipelined requests answered in order), keep-alive, TCP_NODELAY, and
head and body written together. This module adapts it to the contract in
`messages.py`: it reads each body in full (at most MAX_BODY_BYTES), notes
when each request's head arrived, calls `dispatch`, and turns the reply into
aiohttp's, or drops the connection.

The low-level `aiohttp.web.Server`, not an `Application`: the sandbox routes
for itself (api.py), so a router, middlewares and signals would be weight
without use (bench/NOTES.md has the figures).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
import time
from collections import deque
from typing import Any

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import LineTooLong

from reconciler.sandbox.messages import Application, Reply, Request, Response, Streamed

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
BACKLOG = 2048
SERVER = ("Server", "qlik-email-sandbox")
# Head limits: the request line and each header line at most 8 KiB, at most
# 100 header lines. No access log: it costs throughput and nobody reads it.
# auto_decompress off: handlers see the body as sent (no gzip bombs).
# A refused body is read and thrown away for at most 2 s before the
# connection closes, so the client can read the answer, but a client
# sending an endless body cannot hold the connection.
_CONNECTION_OPTIONS: dict[str, Any] = {
    "max_line_size": 8190,
    "max_field_size": 8190,
    "max_headers": 100,
    "access_log": None,
    "auto_decompress": False,
    "lingering_time": 2.0,
}


class HttpServer:
    """Serves an `Application` on one port of the running event loop."""

    def __init__(self, app: Application | None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        # Set to serve HTTPS (transport-security tests); None serves plain HTTP.
        self.ssl: ssl.SSLContext | None = None
        self._socket: socket.socket | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._web: web.Server | None = None

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
        server = self._web = web.Server(self._handle)

        def connection() -> _Connection:
            return _Connection(server, loop=loop, **_CONNECTION_OPTIONS)

        self._listener = await loop.create_server(
            connection, sock=self._socket, backlog=BACKLOG, ssl=self.ssl
        )
        return self.port

    def close(self) -> None:
        """Stop listening and drop every open connection."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        elif self._socket is not None:
            self._socket.close()
        self._socket = None
        if self._web is not None:
            for connection in self._web.connections:
                if connection.transport is not None:
                    connection.transport.abort()

    async def _handle(self, raw: web.BaseRequest) -> web.StreamResponse:
        connection = raw.protocol
        arrivals = connection.arrivals if isinstance(connection, _Connection) else None
        received = arrivals.popleft() if arrivals else time.monotonic()
        try:
            body = await _read_body(raw) if raw.body_exists else b""
        except web_protocol.RequestPayloadError:
            return _refusal(400, "Malformed request body")
        if body is None:
            return _refusal(413, "Request body too large")
        method, target = raw.method, raw.raw_path
        path, _, query = target.partition("?")
        request = Request(method, path, query, raw.headers, body, received)
        try:
            if self.app is None:
                reply: Reply = Response.error(503, "HTTP-2", "The sandbox is starting")
            else:
                result = self.app.dispatch(request)
                reply = result if isinstance(result, Response | Streamed) else await result
        except Exception:
            log.exception("sandbox application error")
            reply = Response.error(500, "INTERNAL-1", "Internal error in the sandbox")
        if isinstance(reply, Streamed):
            return await _stream(raw, reply)
        if reply.drop:
            return _drop(raw)
        return web.Response(status=reply.status, body=reply.body or None, headers=_head(reply))


class _Connection(web_protocol.RequestHandler):
    """aiohttp's connection protocol, noting when each request's head arrived.

    aiohttp parses pipelined requests as they arrive but hands them over one
    at a time; the stamps let injected latency count from arrival.
    """

    __slots__ = ("arrivals",)

    def __init__(self, manager: web.Server, **options: Any) -> None:
        super().__init__(manager, **options)
        self.arrivals: deque[float] = deque()

    def data_received(self, data: bytes) -> None:
        now, parsed = time.monotonic(), self._request_count
        super().data_received(data)
        # A malformed request counts too; it closes the connection, so the
        # stamps never fall out of step with the requests handed over.
        self.arrivals.extend([now] * (self._request_count - parsed))

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Requests aiohttp could not parse: the API's error shape, then close."""
        log.debug("unparsable request: %s", message or exc)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already started")
        if isinstance(exc, LineTooLong):
            return _refusal(431, "Request header fields too large")
        if status == 400:
            return _refusal(400, "Malformed request")
        return _refusal(status, message or "Error")


async def _read_body(raw: web.BaseRequest) -> bytes | None:
    """The whole body, or None when it is larger than MAX_BODY_BYTES."""
    length = raw.content_length
    if length is not None and length > MAX_BODY_BYTES:
        return None  # refused before a byte of it is read
    if raw.headers.get("Expect", "").lower() == "100-continue":
        await raw.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = bytearray()
    # Counted as it arrives: a chunked body says its size only at its end.
    async for chunk in raw.content.iter_any():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _head(reply: Response | Streamed) -> list[tuple[str, str]]:
    return [*reply.headers, SERVER]


def _refusal(status: int, title: str) -> web.Response:
    """An error answer after which the connection closes."""
    reply = Response.error(status, "HTTP-1", title)
    response = web.Response(status=status, body=reply.body, headers=_head(reply))
    response.force_close()
    return response


async def _stream(raw: web.BaseRequest, reply: Streamed) -> web.StreamResponse:
    response = web.StreamResponse(status=reply.status, headers=_head(reply))
    try:
        await response.prepare(raw)
        await reply.write(response)
    except ConnectionError:
        # The client left mid-body: no error of the sandbox's. aiohttp
        # notices the closed connection when it ends the body, and lets it go.
        pass
    except Exception:
        log.exception("sandbox streamed body failed")
        # Cut off, so the client cannot take part of a body for the whole.
        return _drop(raw)
    return response


def _drop(raw: web.BaseRequest) -> web.StreamResponse:
    """Reset the connection; the response returned is never written."""
    transport = raw.transport
    if transport is not None:
        # SO_LINGER 0 makes the close send a RST: the client sees a reset,
        # not a polite end of stream.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=204)
