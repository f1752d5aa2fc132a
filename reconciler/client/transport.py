"""httpx over aiohttp: the transport of every session, and what its failures mean.

`httpx_aiohttp.AiohttpTransport` carries httpx requests over an aiohttp
`ClientSession`, at about a third of the CPU per request of httpx's own
transport (figures in bench/NOTES.md). Adjusted here:

- its ClientSession keeps no cookies (`DummyCookieJar`): by default aiohttp
  stores every Set-Cookie and sends it back on the next request;
- a request is sent by `Transport.handle_async_request`, the library's with
  the same arguments to aiohttp, in one frame: without its exception mapping
  (a context manager per call and per chunk) and with one aiohttp timeout
  object per setting, about 7% of the client's CPU per request
  (bench/NOTES.md, "Client transport");
- its failures become httpx exceptions by what happened (`translate`). The
  library maps every aiohttp connection error (refused, unknown host, TLS) to
  `httpx.ConnectTimeout`; our messages and retry decisions (`failures`)
  depend on the difference;
- aiohttp's own `trust_env` stays off: proxies are picked by httpx from the
  environment, exactly as with httpx's own transport (`HttpClient`), whereas
  aiohttp's would also send credentials from ~/.netrc.
"""

from __future__ import annotations

import functools
import os
import socket
import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from reconciler.client.reply import WireBody

# Bytes asked of aiohttp at a time (a compressed body is decoded a bounded
# step at a time whatever the chunk: `decoding`).
_CHUNK = 16 * 1024
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's defaults


class Transport(AiohttpTransport):
    """An AiohttpTransport without cookies whose failures are translated (see above)."""

    def get_client(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,  # 0: no limit, as None in httpx
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """AiohttpTransport's, in one frame, with our translation of failures."""
        client = self.client
        if not isinstance(client, aiohttp.ClientSession):
            client = self.client = self.get_client()
        data: bytes | httpx.AsyncByteStream | None
        try:
            data = request.content or None
        except httpx.RequestNotRead:  # a streamed body: aiohttp sends it chunked
            data = request.stream  # type: ignore[assignment]
            request.headers.pop("transfer-encoding", None)
        timeout = request.extensions.get("timeout", {})
        proxy = self.proxy
        try:
            response = await client.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, within the size cap
                compress=False,
                timeout=_timeout(timeout.get("connect"), timeout.get("read"), timeout.get("pool")),
                server_hostname=request.extensions.get("sni_hostname"),
                proxy=str(proxy.url) if proxy else None,
                proxy_auth=aiohttp.BasicAuth(*proxy.auth) if proxy and proxy.auth else None,
                proxy_headers=proxy.headers if proxy else None,
            )
        except aiohttp.ClientError as exc:
            raise translate(exc) from None
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions=extensions,
        )


@functools.lru_cache(maxsize=16)
def _timeout(
    connect: float | None, read: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    """httpx's timeouts as aiohttp's (as the library maps them), one object per setting."""
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)


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
        try:
            await self._response.__aexit__(None, None, None)
        except aiohttp.ClientError as exc:
            raise translate(exc) from None


class HttpClient(httpx.AsyncClient):
    """An AsyncClient over `Transport` that ignores Set-Cookie and never sends a
    Cookie header.

    Proxies come from the environment as with httpx's own transport (when
    `trust_env`, and no transport is injected): HTTPS_PROXY, HTTP_PROXY,
    ALL_PROXY and NO_PROXY, read by httpx, which gives each proxy a transport
    of its own (with the same limits) and sends the URLs NO_PROXY names direct.
    """

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        pass  # httpx's __init__ sets an empty jar; there is nothing to keep

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: object = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncBaseTransport:
        if transport is not None:
            return transport
        return Transport(verify=verify, limits=limits)

    def _init_proxy_transport(
        self,
        proxy: httpx.Proxy,
        verify: ssl.SSLContext | str | bool = True,
        cert: object = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _LIMITS,
    ) -> httpx.AsyncBaseTransport:
        return Transport(verify=verify, limits=limits, proxy=proxy)


class _NoCookies(httpx.Cookies):
    """An always-empty cookie jar: nothing is stored, so nothing is sent."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


_NO_COOKIES = _NoCookies()


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
