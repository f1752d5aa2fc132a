"""The session: one HTTP client, token caches and pacers shared by many tenants."""

from __future__ import annotations

import re
from types import TracebackType

import httpx

from reconciler.client.auth import TokenCache
from reconciler.client.options import (
    ClientOptions,
    Credentials,
    OAuthCredentials,
    SessionStats,
    credential_identity,
)
from reconciler.client.pacing import SlidingWindow
from reconciler.client.sender import Endpoint, Sender, Target
from reconciler.client.tenant import TenantClient
from reconciler.client.wire import Wire
from reconciler.errors import RequestError
from reconciler.scrub import Scrubber
from reconciler.urls import split_url

_DEFAULT_OPTIONS = ClientOptions()
_SPACE = re.compile(r"\s")


def _check_url(name: str, base: str) -> str:
    """`base` if it is an http(s) URL with a host and no query or fragment;
    aiohttp parses it for each request (`transport`)."""
    try:
        split = split_url(base)
        split.checked_port()
    except ValueError as exc:
        raise RequestError(f"tenant {name}: {base!r} is not a valid URL ({exc})") from None
    if not base.isprintable() or _SPACE.search(base):
        raise RequestError(f"tenant {name}: {base!r} is not a valid URL (spaces or controls)")
    if not base.isascii():
        # A host name beyond ASCII must be valid IDNA, which urlsplit does not
        # check: httpx's parser does (and aiohttp would fail on it otherwise).
        try:
            httpx.URL(base)
        except httpx.InvalidURL as exc:
            raise RequestError(f"tenant {name}: {base!r} is not a valid URL ({exc})") from None
    parts = split.parts
    plain = not (parts.query or parts.fragment or "?" in base or "#" in base)
    if parts.scheme.lower() not in ("https", "http") or not split.hostname or not plain:
        raise RequestError(f"tenant {name}: {base!r} is not an http(s) URL without query")
    return base


class ApiSession:
    """Talks to any number of tenants from one event loop.

    Use as `async with ApiSession(options) as session:`, then
    `session.tenant(name, url, credentials)` per tenant. TenantClients of the
    same (base URL, credentials) share one token cache and one pair of pacers,
    because the API's rate limits are per user per tenant.

    `scrubber` (by default one of its own) learns every credential and access
    token the session uses; all text a server sends passes it before it is
    kept. Pass the secret resolver's to scrub the e-mail secrets too.
    `reduce_free_text`, for commands that hold no e-mail secret (plan, drift):
    free server text is also reduced (`scrub.reduce_unresolved`): bounded,
    one line, credential-like tokens hidden, since a secret the process never
    learnt cannot be scrubbed.
    """

    def __init__(
        self,
        options: ClientOptions = _DEFAULT_OPTIONS,
        scrubber: Scrubber | None = None,
        *,
        reduce_free_text: bool = False,
    ) -> None:
        self.options = options
        self.stats = SessionStats()
        self.scrubber = scrubber if scrubber is not None else Scrubber()
        self._wire = Wire(options)
        self._sender = Sender(options, self.stats, self._wire, self.scrubber, reduce_free_text)
        self._endpoints: dict[tuple[str, str], Endpoint] = {}

    async def __aenter__(self) -> ApiSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection; the session cannot send afterwards."""
        await self._wire.aclose()

    def tenant(self, name: str, base_url: str, credentials: Credentials) -> TenantClient:
        """A client for the tenant at `base_url` (which may carry a path prefix)."""
        base = _check_url(name, base_url.rstrip("/"))
        if isinstance(credentials, OAuthCredentials):
            self.scrubber.add(credentials.client_secret.reveal())
        else:
            self.scrubber.add(credentials.key.reveal())
        key = (base, credential_identity(credentials))
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._endpoints[key] = self._endpoint(key, credentials)
        return TenantClient(self._sender, Target(name, base, credentials, endpoint))

    def _endpoint(self, key: tuple[str, str], credentials: Credentials) -> Endpoint:
        """What the callers with `key` (base URL, credential identity) share."""
        options = self.options
        tier1 = tier2 = None
        if options.pace:
            tier1 = SlidingWindow(options.tier1_per_minute, options.clock, options.sleep)
            tier2 = SlidingWindow(options.tier2_per_minute, options.clock, options.sleep)
        if isinstance(credentials, OAuthCredentials):
            return Endpoint(tier1, tier2, TokenCache(options.clock), issued=Scrubber())
        return Endpoint(tier1=tier1, tier2=tier2, token=None)
