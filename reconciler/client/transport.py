"""httpx over aiohttp: the transport of every session, and what its failures mean.

`Transport` is an `httpx.AsyncBaseTransport`, httpx's public seam for a
transport of one's own, that sends over an aiohttp `ClientSession`: about a
third of the CPU per request of httpx's own transport (bench/NOTES.md,
"Client transport"). The session calls its `send` itself (`wire`), with
the request as it is, through the proxies of the environment
(`environment_routes`); httpx's clients call `handle_async_request`. Around it:

- no cookies: the ClientSession's jar is aiohttp's `DummyCookieJar` (by
  default aiohttp stores every Set-Cookie and sends it back), so that one
  tenant cannot set a cookie that another tenant's requests carry;
- failures become httpx exceptions by what happened (`translate`), as httpx's
  own transport raises them: our messages and retry decisions (`failures`)
  depend on the difference between a refused connection, an unknown host and
  a TLS failure;
- aiohttp's own `trust_env` stays off: proxies come from the same variables
  httpx reads (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY), each proxy a
  `Transport` of its own, whereas aiohttp's would also send credentials from
  ~/.netrc.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import NamedTuple

import aiohttp
import httpx

from reconciler.client.reply import Headers, Reply, WireBody, read_body

# Bytes asked of aiohttp at a time (the decoder bounds what a chunk grows into).
_CHUNK = 16 * 1024
_NO_CONTENT_TYPE = ("Content-Type",)  # a request without a body says nothing of its type


class Transport(httpx.AsyncBaseTransport):
    """httpx requests over one aiohttp ClientSession, created on first use in the
    running loop; `proxy`, when given, is the forward proxy every request uses."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        self._ssl = ssl_context
        self._limits = limits
        self._proxy = proxy
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,  # 0: no limit, as None in httpx
            keepalive_timeout=self._limits.keepalive_expiry,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through aiohttp (httpx's seam); its body is a stream
        (`WireBody`), read by the caller."""
        content: bytes | httpx.AsyncByteStream | None
        try:
            content = request.content or None
        except httpx.RequestNotRead:  # a streamed body: aiohttp sends it chunked
            content = request.stream  # type: ignore[assignment]
            request.headers.pop("transfer-encoding", None)
        timeout = request.extensions.get("timeout", {})
        response = await self._request(
            request.method,
            str(request.url),
            request.headers.multi_items(),
            content,
            Timeouts(timeout.get("connect"), timeout.get("read"), timeout.get("pool")),
            request.extensions.get("sni_hostname"),
        )
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            extensions=extensions,
            request=request,
        )

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
        timeouts: Timeouts,
        limit: int,
    ) -> Reply:
        """The whole response to one request, its body read within `limit` bytes
        (`reply.read_body`). The session calls this itself (`wire`): building an
        httpx.Request, and parsing its URL, then an httpx.Response and its
        headers, was a large part of each request's cost (bench/NOTES.md)."""
        response = await self._request(method, url, headers, content, timeouts)
        try:
            headers_in = Headers(response.raw_headers)
            body = await read_body(
                response.status, headers_in, response.content.iter_chunked(_CHUNK), limit
            )
        except aiohttp.ClientError as exc:
            raise translate(exc) from None
        finally:
            await _release(response)
        return Reply(response.status, headers_in, body)

    async def _request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | Sequence[tuple[str, str]],
        content: bytes | httpx.AsyncByteStream | None,
        timeouts: Timeouts,
        sni_hostname: str | None = None,
    ) -> aiohttp.ClientResponse:
        """One request through aiohttp, its failures translated (`translate`)."""
        session = self._session or self._open()
        proxy = self._proxy
        try:
            return await session.request(
                method,
                url,
                headers=headers,
                data=content,
                # aiohttp gives every POST without one `application/octet-stream`
                # (never a GET: nothing to skip, nor a set of names to build).
                skip_auto_headers=_NO_CONTENT_TYPE if content is None and method != "GET" else None,
                allow_redirects=False,
                auto_decompress=False,  # `decoding` undoes it, within the size cap
                compress=False,
                timeout=_timeout(timeouts),
                server_hostname=sni_hostname,
                proxy=str(proxy.url) if proxy else None,
                proxy_auth=aiohttp.BasicAuth(*proxy.auth) if proxy and proxy.auth else None,
                proxy_headers=proxy.headers if proxy else None,
            )
        except aiohttp.ClientError as exc:
            raise translate(exc) from None

    async def aclose(self) -> None:
        """Close the ClientSession and its connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class Routes:
    """Which transport sends a request to a URL: `direct`, or the proxy the
    environment names for the URL's scheme. The rules are httpx's for `mounts=`
    (patterns tried from the most specific, the first that matches wins), over
    the mounts httpx makes of the environment (`environment_routes`); kept
    here because the session calls its transports itself (`wire`)."""

    def __init__(
        self,
        direct: httpx.AsyncBaseTransport,
        mounts: dict[str, httpx.AsyncBaseTransport | None] | None = None,
    ) -> None:
        self.direct = direct
        patterns = sorted(
            ((_Pattern(key), transport) for key, transport in (mounts or {}).items()),
            key=lambda mount: mount[0].priority(),
        )
        self._mounts = [(pattern, transport or direct) for pattern, transport in patterns]
        self._parsed: dict[str, httpx.URL] = {}

    def transport_for(self, url: str) -> httpx.AsyncBaseTransport:
        """The transport for a request to `url` (parsed, by httpx, only when a
        proxy is configured: once per URL)."""
        if not self._mounts:
            return self.direct
        parsed = self._parsed.get(url)
        if parsed is None:
            try:
                parsed = self._parsed[url] = httpx.URL(url)
            except httpx.InvalidURL as exc:  # as `translate` says it of aiohttp's
                raise httpx.UnsupportedProtocol(f"invalid URL: {exc}") from None
        for pattern, transport in self._mounts:
            if pattern.matches(parsed):
                return transport
        return self.direct

    def transports(self) -> list[httpx.AsyncBaseTransport]:
        """Every transport, each once: what closing the routes closes."""
        found = [self.direct]
        for _, transport in self._mounts:
            if all(transport is not known for known in found):
                found.append(transport)
        return found


class _Pattern:
    """One mount pattern (`all://*example.com`, `https://`, ...), read and
    matched as httpx reads and matches it."""

    def __init__(self, pattern: str) -> None:
        url = httpx.URL(pattern)
        self.scheme = "" if url.scheme == "all" else url.scheme
        self.host = "" if url.host == "*" else url.host
        self.port = url.port

    def matches(self, url: httpx.URL) -> bool:
        if self.scheme and self.scheme != url.scheme:
            return False
        if self.port is not None and self.port != url.port:
            return False
        host = self.host
        if host.startswith("*."):  # the subdomains of a domain
            return url.host.endswith(host[1:]) and len(url.host) > len(host) - 1
        if host.startswith("*"):  # a domain and its subdomains
            domain = host[1:]
            return url.host == domain or url.host.endswith("." + domain)
        return not host or url.host == host

    def priority(self) -> tuple[bool, int, int]:
        """Lower first: a port, a longer host, a scheme."""
        return (self.port is None, -len(self.host), -len(self.scheme))


def environment_routes(
    direct: httpx.AsyncBaseTransport, ssl_context: ssl.SSLContext, limits: httpx.Limits
) -> Routes:
    """`direct`, and the proxies the environment names, as httpx reads them
    (`urllib.request.getproxies`): a `Transport` through each proxy for its
    scheme (`http://`, `https://`, `all://`), and `direct` for each NO_PROXY
    entry; `direct` only when NO_PROXY is `*`."""
    found = urllib.request.getproxies()
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
    for scheme in ("http", "https", "all"):
        url = found.get(scheme)
        if url:
            proxy = httpx.Proxy(url if "://" in url else f"http://{url}")
            mounts[f"{scheme}://"] = Transport(ssl_context, limits, proxy)
    for entry in (e.strip() for e in found.get("no", "").split(",")):
        if entry == "*":
            return Routes(direct)
        if entry:
            mounts[_direct_pattern(entry)] = None
    return Routes(direct, mounts)


def _direct_pattern(entry: str) -> str:
    """The mount pattern of one NO_PROXY entry, as httpx reads it."""
    if "://" in entry:
        return entry
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return f"all://{entry}" if entry.lower() == "localhost" else f"all://*{entry}"
    return f"all://[{entry}]" if address.version == 6 else f"all://{entry}"


class Timeouts(NamedTuple):
    """httpx's timeouts that the transport uses (None: none)."""

    connect: float | None
    read: float | None
    pool: float | None


@functools.lru_cache(maxsize=16)
def _timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    """httpx's timeouts as aiohttp's (as the library maps them), one object per setting."""
    return aiohttp.ClientTimeout(
        sock_connect=timeouts.connect, sock_read=timeouts.read, connect=timeouts.pool
    )


class _Body(WireBody):
    """An aiohttp response's body, its failures translated."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except aiohttp.ClientError as exc:
            raise translate(exc) from None

    async def aclose(self) -> None:
        await _release(self._response)


async def _release(response: aiohttp.ClientResponse) -> None:
    """Give the response's connection back (or close it, if the body was not
    read to its end), as leaving `async with` a response does."""
    try:
        response.release()
        await response.wait_for_close()
    except aiohttp.ClientError as exc:
        raise translate(exc) from None


def translate(exc: aiohttp.ClientError) -> httpx.TransportError:
    """The httpx exception httpx's own transport raises for the same trouble."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return httpx.ConnectError(str(exc.certificate_error))
    if isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return httpx.ProxyError(str(exc))
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return httpx.ConnectError(f"TLS handshake failed: {exc.os_error}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(_os_text(exc.os_error))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout("connection timed out")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout("timed out waiting for the response")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError("the server closed the connection")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(f"incomplete response body: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(f"invalid response: {exc.message}")
    if isinstance(exc, aiohttp.ClientConnectionError):  # resets, broken pipes
        return httpx.ReadError(str(exc) or type(exc).__name__)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(f"invalid URL: {exc}")
    return httpx.TransportError(f"{type(exc).__name__}: {exc}")


def _os_text(error: OSError) -> str:
    """'[Errno 111] Connection refused' rather than asyncio's 'Connect call failed'."""
    if isinstance(error, socket.gaierror) or not error.errno:
        return str(error) or type(error).__name__
    return f"[Errno {error.errno}] {os.strerror(error.errno)}"
