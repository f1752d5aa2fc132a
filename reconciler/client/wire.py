"""The session's HTTP client, and one request on it: bounded in time and in size.

One transport serves every tenant of a session: aiohttp (`transport`), with
`connections` connections, or a proxy's when the environment names one
(`transport.Routes`). The wire calls the transport itself: httpx's client
would only add what no request of ours uses (cookies, redirects, auth flows,
event hooks). Our own transport is given the request as it is (method, URL
string, headers, body: `Transport.send`), since building an httpx.Request,
and parsing its URL, was a large part of each request's cost (bench/NOTES.md,
"httpx's models off the request path"); an injected transport (tests) gets
an httpx.Request, built the same way.

A request first takes one of `connections` slots, so that waiting for a
connection of our own is queueing, never a timeout; then the whole exchange
(connecting, sending, and reading the complete response) must end within
`timeout_s`. The transport's timeouts alone would bound only the time between
two reads: a server sending a byte a second would hold a request forever. So
the transport is given a connect timeout only (at most 10 s, for its own
message); a read timeout of `timeout_s` could never fire before the deadline,
and would cost a timer reset on every read. The body is read as a stream and
dropped once it goes past `max_response_bytes`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from json import dumps
from typing import Any, TypeVar

import httpx

from reconciler.client import tls
from reconciler.client.decoding import ACCEPT_ENCODING
from reconciler.client.options import ClientOptions
from reconciler.client.reply import Reply, read_reply
from reconciler.client.transport import Routes, Timeouts, Transport, environment_routes

T = TypeVar("T")


class ResponseDeadline(httpx.TimeoutException):
    """The complete response did not arrive within `timeout_s` (retried like a timeout)."""


if sys.version_info >= (3, 11):
    from reconciler.client.expiry import expiring

    async def _within(seconds: float, work: Awaitable[T]) -> T:
        with expiring(seconds):  # asyncio.timeout's behaviour, at less cost
            return await work

else:  # asyncio.timeout is new in 3.11; wait_for costs a task per request

    async def _within(seconds: float, work: Awaitable[T]) -> T:
        return await asyncio.wait_for(work, seconds)


class Wire:
    """The HTTP client of one session, created on first use (it loads the CA bundle)."""

    def __init__(self, options: ClientOptions) -> None:
        self._options = options
        self._routes: Routes | None = None
        # Every request's: the headers before its own (those of httpx's client,
        # in its order), and the transport's timeouts.
        self._headers = {
            "Connection": "keep-alive",
            "User-Agent": options.user_agent,
            "Accept": "application/json",
            # Only what `decoding` undoes within the size cap (httpx would
            # also offer br and zstd when their packages are installed).
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        timeout = httpx.Timeout(None, connect=min(10.0, options.timeout_s))
        self._extensions: dict[str, Any] = {"timeout": timeout.as_dict()}
        self._timeouts = Timeouts(timeout.connect, timeout.read, timeout.pool)
        self._slots = asyncio.Semaphore(options.connections)
        self._closed = False

    @property
    def _transport(self) -> httpx.AsyncBaseTransport | None:
        """The direct transport, once opened (for tests)."""
        return None if self._routes is None else self._routes.direct

    async def exchange(
        self, method: str, url: str, json: Any, headers: dict[str, str] | None
    ) -> Reply:
        """The complete response to one request. Raises httpx.RequestError (a
        ResponseDeadline after `timeout_s`) or reply.BodyTooLarge."""
        routes = self._routes or self._open()
        timeout = self._options.timeout_s
        async with self._slots:
            try:
                return await _within(timeout, self._exchange(routes, method, url, json, headers))
            except asyncio.TimeoutError:
                raise ResponseDeadline(f"no complete response within {timeout:g} s") from None

    async def _exchange(
        self,
        routes: Routes,
        method: str,
        url: str,
        json: Any,
        headers: dict[str, str] | None,
    ) -> Reply:
        merged = self._headers if headers is None else {**self._headers, **headers}
        body = None
        if json is not None:
            # As httpx encodes `json=`: compact UTF-8, no NaN.
            text = dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            body = text.encode()
            merged = {**merged, "Content-Type": "application/json"}
        transport = routes.transport_for(url)
        limit = self._options.max_response_bytes
        if isinstance(transport, Transport):
            # Ours takes the request as it is, and gives the response read: no
            # httpx.Request to build, nor its URL to parse, nor an httpx.Response
            # and its headers (bench/NOTES.md).
            return await transport.send(method, url, merged, body, self._timeouts, limit)
        # An injected transport (tests) takes httpx's request.
        request = httpx.Request(
            method, url, content=body, headers=merged, extensions=self._extensions
        )
        return await read_reply(await transport.handle_async_request(request), limit)

    def _open(self) -> Routes:
        if self._closed:
            raise RuntimeError("the ApiSession is closed")
        options = self._options
        if options.transport is not None:
            # An injected transport brings its own TLS settings, and no proxies.
            self._routes = Routes(options.transport)
            return self._routes
        connections = options.connections
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        context = tls.shared()  # ours always verifies
        self._routes = environment_routes(Transport(context, limits), context, limits)
        return self._routes

    async def aclose(self) -> None:
        """Close the client and its connections; the wire cannot be used afterwards."""
        self._closed = True
        routes, self._routes = self._routes, None
        if routes is not None:
            for transport in routes.transports():
                await transport.aclose()
