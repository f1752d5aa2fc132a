"""httpx over aiohttp: the transport of every session, and what its failures mean.

`httpx_aiohttp.AiohttpTransport` carries httpx requests over an aiohttp
`ClientSession`, at about a third of the CPU per request of httpx's own
transport (figures in bench/NOTES.md). Adjusted here:

- its ClientSession keeps no cookies (`DummyCookieJar`): by default aiohttp
  stores every Set-Cookie and sends it back on the next request;
- its failures become httpx exceptions by what happened. The library maps
  every aiohttp connection error (refused, unknown host, TLS) to
  `httpx.ConnectTimeout`, and lets some others through unmapped; our messages
  and retry decisions (`failures`) depend on the difference;
- aiohttp's own `trust_env` stays off: proxies are picked by httpx from the
  environment, exactly as with httpx's own transport (`HttpClient`), whereas
  aiohttp's would also send credentials from ~/.netrc.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

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
        with translating():
            response = await super().handle_async_request(request)
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _TranslatingStream(response.stream)
        return response


class _TranslatingStream(httpx.AsyncByteStream):
    """A response body whose read failures are translated too."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with translating():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        with translating():
            await self._inner.aclose()


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


@contextlib.contextmanager
def translating() -> Iterator[None]:
    """Turn aiohttp's failures (raw, or as the library mapped them) into `translate`'s."""
    try:
        yield
    except httpx.TransportError as exc:
        if isinstance(exc.__cause__, aiohttp.ClientError):
            raise translate(exc.__cause__) from None
        raise
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
