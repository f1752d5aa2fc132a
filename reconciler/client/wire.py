"""The session's HTTP client, and one request on it: bounded in time and in size.

One `httpx.AsyncClient` serves every tenant of a session, over aiohttp
(`transport`), with `connections` connections. A request first takes one of
`connections` slots, so that waiting for a connection of our own is queueing,
never a timeout; then the whole exchange (connecting, sending, and reading the
complete response) must end within `timeout_s`. httpx's timeouts alone bound
only the time between two reads: a server sending a byte a second would hold a
request forever. So the transport is given a connect timeout only (at most
10 s, for its own message); a read timeout of `timeout_s` could never fire
before the deadline, and would cost a timer reset on every read. The body is
read as a stream and dropped once it goes past `max_response_bytes`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

import httpx

from reconciler.client import tls
from reconciler.client.decoding import ACCEPT_ENCODING
from reconciler.client.options import ClientOptions
from reconciler.client.reply import Reply, read_body
from reconciler.client.transport import Transport, environment_mounts, no_cookies

T = TypeVar("T")


_CLOSED = httpx.ByteStream(b"")


class ResponseDeadline(httpx.TimeoutException):
    """The complete response did not arrive within `timeout_s` (retried like a timeout)."""


if sys.version_info >= (3, 11):

    async def _within(seconds: float, work: Awaitable[T]) -> T:
        async with asyncio.timeout(seconds):
            return await work

else:  # asyncio.timeout is new in 3.11; wait_for costs a task per request

    async def _within(seconds: float, work: Awaitable[T]) -> T:
        return await asyncio.wait_for(work, seconds)


class Wire:
    """The HTTP client of one session, created on first use (it loads the CA bundle)."""

    def __init__(self, options: ClientOptions) -> None:
        self._options = options
        self._client: httpx.AsyncClient | None = None
        self._transport: httpx.AsyncBaseTransport | None = None  # the client's, for tests
        self._extensions: dict[str, Any] = {}  # each request's: the client's timeouts
        self._slots = asyncio.Semaphore(options.connections)
        self._closed = False

    async def exchange(
        self, method: str, url: httpx.URL, json: Any, headers: dict[str, str] | None
    ) -> Reply:
        """The complete response to one request. Raises httpx.RequestError (a
        ResponseDeadline after `timeout_s`) or reply.BodyTooLarge."""
        client = self._client or self._open()
        timeout = self._options.timeout_s
        async with self._slots:
            try:
                return await _within(timeout, self._exchange(client, method, url, json, headers))
            except asyncio.TimeoutError:
                raise ResponseDeadline(f"no complete response within {timeout:g} s") from None

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: httpx.URL,
        json: Any,
        headers: dict[str, str] | None,
    ) -> Reply:
        # Built here rather than by `client.build_request`, which would merge
        # the client's headers, cookies and timeouts again on every request.
        request = httpx.Request(
            method,
            url,
            json=json,
            headers=self._headers(client, headers),
            extensions=self._extensions,
        )
        response = await client.send(request, stream=True)
        try:
            content = await read_body(response, self._options.max_response_bytes)
        finally:
            await response.aclose()
            # httpx's response and its stream refer to each other: a cycle per
            # request that only the cyclic GC could free (bench/NOTES.md).
            response.stream = _CLOSED
        return Reply(response.status_code, response.headers, content)

    def _open(self) -> httpx.AsyncClient:
        if self._closed:
            raise RuntimeError("the ApiSession is closed")
        options = self._options
        connections = options.connections
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        if options.transport is None:
            context = tls.shared()  # ours always verifies
            transport: httpx.AsyncBaseTransport = Transport(context, limits)
            mounts = environment_mounts(context, limits)
        else:  # an injected transport brings its own TLS settings, and no proxies
            transport, mounts = options.transport, {}
        self._transport = transport
        self._client = httpx.AsyncClient(
            transport=transport,
            mounts=mounts,
            cookies=no_cookies(),
            timeout=httpx.Timeout(None, connect=min(10.0, options.timeout_s)),
            headers={
                "User-Agent": options.user_agent,
                "Accept": "application/json",
                # Only what `decoding` undoes within the size cap (httpx would
                # also offer br and zstd when their packages are installed).
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            follow_redirects=False,
            trust_env=False,  # the proxies are `mounts`; the CA settings are `tls`'s
        )
        self._extensions = {"timeout": self._client.timeout.as_dict()}
        return self._client

    @staticmethod
    def _headers(client: httpx.AsyncClient, headers: dict[str, str] | None) -> httpx.Headers:
        """The client's headers, with the request's own over them (as `build_request`)."""
        if not headers:
            return client.headers
        merged = client.headers.copy()
        merged.update(headers)
        return merged

    async def aclose(self) -> None:
        """Close the client and its connections; the wire cannot be used afterwards."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
