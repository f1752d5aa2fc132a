"""OAuth2 client credentials: the token request, and a single-flight token cache."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from reconciler.client.options import Clock, OAuthCredentials

TOKEN_PATH = "/oauth/token"
REFRESH_MARGIN_S = 60.0
# Used when the token response says nothing about its lifetime (documented: 6 hours).
DEFAULT_LIFETIME_S = 300.0

# A server's token goes into an Authorization header as it is: RFC 6750's
# b64token syntax (so no whitespace or control character can reach the header,
# or an error message that quotes it), bounded.
_B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
MAX_TOKEN = 16384

TokenFetch = Callable[[], Awaitable[tuple[str, float]]]


def token_request_body(credentials: OAuthCredentials) -> dict[str, str]:
    """The JSON body of a client-credentials token request."""
    body = {
        "grant_type": "client_credentials",
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret.reveal(),
    }
    if credentials.scope:
        body["scope"] = credentials.scope
    return body


def parse_token_response(body: Any) -> tuple[str, float]:
    """(access token, lifetime in seconds) from a token response; ValueError if unusable."""
    if not isinstance(body, dict):
        raise ValueError("the answer is not a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("the answer has no access_token")
    if len(token) > MAX_TOKEN or not _B64TOKEN.fullmatch(token):
        # Never quoted: it may be a secret, and this server's text is where it
        # is scrubbed, not this message.
        raise ValueError(
            f"its access_token is not a bearer token (RFC 6750: at most {MAX_TOKEN} "
            "letters, digits and -._~+/ characters, then = padding)"
        )
    return token, _lifetime(body)


def _lifetime(body: dict[str, Any]) -> float:
    expires_in = body.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
        expires_in = None
    if expires_in is not None and math.isfinite(expires_in) and expires_in > 0:
        return float(expires_in)
    expires_at = body.get("expires_at")
    if isinstance(expires_at, str):
        try:
            # fromisoformat() of Python 3.10 does not accept a trailing Z.
            when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        except ValueError:
            return DEFAULT_LIFETIME_S
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        left = when.timestamp() - time.time()
        if left > 0:
            return left
    return DEFAULT_LIFETIME_S


class TokenCache:
    """The access token of one (tenant, OAuth client), shared by all its callers.

    A token is reused until it is within `REFRESH_MARGIN_S` of expiry (or half
    its lifetime, for very short-lived tokens). Concurrent callers share one
    in-flight fetch: those that queued behind a fetch take its token, or its
    error, instead of each asking the token endpoint again. Tokens live in
    memory only, for the life of the session.
    """

    __slots__ = ("_clock", "_error", "_flights", "_lock", "_refresh_at", "_token")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self._flights = 0
        self._error: BaseException | None = None

    @property
    def current(self) -> str | None:
        """The cached token, if any (used to scrub it from error text)."""
        return self._token

    def _fresh(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    async def get(self, fetch: TokenFetch) -> str:
        """A valid token, calling `fetch` only when there is none."""
        token = self._fresh()
        if token is not None:
            return token
        flights_seen = self._flights
        async with self._lock:
            if self._flights != flights_seen:
                # A fetch completed while we queued: share its outcome.
                if self._error is not None:
                    raise self._error
                token = self._fresh()
                if token is not None:
                    return token
            return await self._fetch(fetch)

    async def _fetch(self, fetch: TokenFetch) -> str:
        try:
            token, lifetime = await fetch()
        except Exception as exc:
            self._error = exc
            raise
        else:
            self._error = None
            self._token = token
            self._refresh_at = self._clock() + lifetime - min(REFRESH_MARGIN_S, lifetime / 2)
            return token
        finally:
            self._flights += 1

    def invalidate(self, token: str) -> None:
        """Drop `token` after the API refused it, unless a newer one already replaced it."""
        if self._token == token:
            self._token = None
