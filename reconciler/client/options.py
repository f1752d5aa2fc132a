"""The client's value types: credentials, options, results and counters."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

import httpx

from reconciler import __version__
from reconciler.secrets import Secret
from reconciler.values import valueclass

Sleep: TypeAlias = Callable[[float], Awaitable[None]]
Clock: TypeAlias = Callable[[], float]


@valueclass
class ApiKeyCredentials:
    """Authenticate with a Bearer API key."""

    key: Secret


@valueclass
class OAuthCredentials:
    """Authenticate with OAuth2 client credentials (`POST {tenant}/oauth/token`)."""

    client_id: str
    client_secret: Secret
    scope: str | None = None


Credentials: TypeAlias = ApiKeyCredentials | OAuthCredentials


def credential_identity(credentials: Credentials) -> str:
    """Who the tenant sees calling: rate limits and tokens are per user per tenant.

    An API key is identified by a digest, so the key itself is never a dict key
    that could end up in a debugger dump or a log line.
    """
    if isinstance(credentials, OAuthCredentials):
        return f"oauth:{credentials.client_id}:{credentials.scope or ''}"
    digest = hashlib.sha256(credentials.key.reveal().encode()).hexdigest()
    return f"key:{digest[:32]}"


@valueclass
class ClientOptions:
    """How an `ApiSession` talks to tenants.

    `timeout_s` bounds each attempt as a whole: connecting (at most 10 s of
    it), sending, and reading the complete response. `max_retries` counts
    extra attempts after the first one, for retryable failures only.
    `connections` is how many requests the session has on the wire at once,
    and how many connections it keeps. A response body larger than
    `max_response_bytes` (512 KiB; the API's are a few hundred bytes) is an
    ApiError, not retried. `sleep` and `clock` (monotonic seconds) are
    injectable so tests never really wait; `transport`, when set, replaces the
    aiohttp transport (tests pass an `httpx.MockTransport`).
    """

    timeout_s: float = 30.0
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0
    connections: int = 64
    max_response_bytes: int = 512 * 1024
    pace: bool = True
    tier1_per_minute: int = 900
    tier2_per_minute: int = 90
    user_agent: str = f"qlik-email/{__version__} (+https://github.com/qlik-email/qlik-email)"
    transport: httpx.AsyncBaseTransport | None = None
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.monotonic

    def __post_init__(self) -> None:
        problems = [
            name
            for name, ok in (
                ("timeout_s", self.timeout_s > 0),
                ("max_retries", self.max_retries >= 0),
                ("backoff_base_s", self.backoff_base_s >= 0),
                ("backoff_max_s", self.backoff_max_s >= 0),
                ("max_retry_after_s", self.max_retry_after_s >= 0),
                ("connections", self.connections >= 1),
                ("max_response_bytes", self.max_response_bytes >= 1),
                ("tier1_per_minute", self.tier1_per_minute >= 1),
                ("tier2_per_minute", self.tier2_per_minute >= 1),
            )
            if not ok
        ]
        if problems:
            raise ValueError(f"ClientOptions: invalid {', '.join(problems)}")


@valueclass
class SmtpResult:
    """The 200 answer of verify-connection and send-test-email.

    `success` False with a 200 is not an API error: the tenant reached its mail
    server (or not, see `connection_failed`) and reports what happened.
    """

    success: bool
    connection_failed: bool
    message: str
    smtp_response_code: int | None
    accepted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()


@dataclass(slots=True)
class SessionStats:
    """Counters of one session, for tests and benchmarks.

    `requests` counts HTTP attempts (token requests included), `retries` the
    attempts that were repeated, `token_fetches` the OAuth tokens requested.
    """

    requests: int = 0
    retries: int = 0
    responses_429: int = 0
    token_fetches: int = 0
