"""One logical call, on the wire: pacing, authentication, retries, logging.

Retry policy (attempts = 1 + `max_retries`):

- connection errors, timeouts and 500/502/503/504 are retried for idempotent
  calls only, after an exponential backoff with full jitter;
- a 429 is retried for every call, even a non-idempotent one: a 429 says the
  request was not processed. Its `Retry-After` (or a 503's) replaces the
  backoff; a longer wait than `max_retry_after_s`, or than what is left of
  the step's deadline (`deadline`), is an error, not a wait;
- an OAuth 401 drops the token and repeats the call once with a new one
  (not counted as a retry: a 401 is not processed either);
- a 3xx is an error: redirects are never followed;
- a body over `max_response_bytes` is an error, never retried.

Every wait happens in the caller's coroutine only, so other tenants carry on.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from reconciler.client.auth import TOKEN_PATH, TokenCache, parse_token_response, token_request_body
from reconciler.client.deadline import retry_refusal
from reconciler.client.failures import (
    Clean,
    error_detail,
    error_for,
    is_retryable,
    oversized,
    redirected,
    retry_after_s,
    unreachable,
)
from reconciler.client.options import (
    ApiKeyCredentials,
    ClientOptions,
    Credentials,
    OAuthCredentials,
    SessionStats,
)
from reconciler.client.pacing import SlidingWindow
from reconciler.client.reply import BodyTooLarge, Reply
from reconciler.client.wire import Wire
from reconciler.errors import ApiError, AuthError
from reconciler.scrub import Scrubber, reduce_unresolved
from reconciler.values import valueclass

log = logging.getLogger("reconciler.client")

_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_TOKEN_REFUSED = frozenset({400, 401, 403})


@valueclass
class Call:
    """One API operation: `label` names it in messages, `tier` picks the pacer."""

    label: str
    method: str
    path: str
    tier: int
    idempotent: bool = True
    json: Any = None
    authenticated: bool = True


@dataclass(slots=True)
class Endpoint:
    """What the TenantClients of one (base URL, credential identity) share.

    `issued` (OAuth only) knows the access tokens this server issued: they are
    scrubbed from this server's text only, never from the rest of the output.
    Only this server and this process know a token it issued, so its answers
    are the one way back to the output; and a token is the server's choice, so
    scrubbing it everywhere would let the server redact any text it likes (the
    reviewed configuration, other tenants' values) by issuing it as a token."""

    tier1: SlidingWindow | None
    tier2: SlidingWindow | None
    token: TokenCache | None
    issued: Scrubber | None = None


@valueclass
class Target:
    """Who a call goes to, and as whom."""

    name: str
    base_url: str
    credentials: Credentials
    endpoint: Endpoint


@valueclass
class Exchange:
    """The final response of a call and how many attempts it took."""

    response: Reply
    attempts: int


class Sender:
    """Sends calls for every tenant of a session."""

    def __init__(
        self,
        options: ClientOptions,
        stats: SessionStats,
        wire: Wire,
        scrubber: Scrubber,
        reduce_free_text: bool = False,
    ) -> None:
        self._options = options
        self._stats = stats
        self._wire = wire
        # Every secret of the session (keys, client secrets, and what the caller
        # registers) is scrubbed from server values before they are kept
        # (`_scrub_value`), and from free server text (error titles and codes,
        # messages, statusReason: `_scrub_free_text`, which also reduces it
        # when the run holds no e-mail secret);
        # text from one server, `value_scrubber` and `free_text_scrubber`, which also scrub
        # the tokens that server issued (`Endpoint.issued`).
        self.scrubber = scrubber
        self._scrub_value = scrubber.scrub
        self._scrub_free_text = self._reduced if reduce_free_text else scrubber.scrub
        self._reduce = reduce_free_text

    def _reduced(self, text: str) -> str:
        return reduce_unresolved(self.scrubber.scrub(text))

    def value_scrubber(self, target: Target) -> Clean:
        """How values from `target`'s server are scrubbed: of every secret of the
        session, and of the tokens that server issued."""
        issued = target.endpoint.issued
        if issued is None:
            return self._scrub_value
        scrub = self.scrubber.scrub
        return lambda text: issued.scrub(scrub(text))

    def free_text_scrubber(self, target: Target) -> Clean:
        """How free text from `target`'s server is scrubbed: as its values, then
        reduced when the run holds no e-mail secret (the tokens are scrubbed
        before the text is reduced, which could cut one short)."""
        issued = target.endpoint.issued
        if issued is None:
            return self._scrub_free_text
        clean = self.value_scrubber(target)
        if self._reduce:
            return lambda text: reduce_unresolved(clean(text))
        return clean

    async def send(self, target: Target, call: Call) -> Exchange:
        """The final response of `call`, after retries; raises ApiError when there is none."""
        url = target.base_url + call.path
        allowed = 1 + self._options.max_retries
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            await self._pace(target.endpoint, call.tier)
            token = await self._token(target) if call.authenticated else None
            try:
                response = await self._attempt(target, call, url, token, attempt)
            except httpx.RequestError as exc:
                if call.idempotent and attempt < allowed and is_retryable(exc):
                    await self._wait(target, call, attempt, type(exc).__name__, None)
                    continue
                raise unreachable(
                    url,
                    exc,
                    tenant=target.name,
                    attempts=attempt,
                    clean=self.value_scrubber(target),
                ) from None
            except BodyTooLarge as exc:
                raise oversized(
                    exc.status, exc.limit, tenant=target.name, label=call.label
                ) from None
            status = response.status_code
            cache = target.endpoint.token  # set for OAuth credentials only
            if status == 401 and token is not None and cache is not None and not refreshed:
                refreshed, allowed = True, allowed + 1
                cache.invalidate(token)
                log.info("%s: access token refused (401), fetching a new one", target.name)
                continue
            if 300 <= status < 400:
                raise redirected(
                    response,
                    tenant=target.name,
                    label=call.label,
                    clean=self.value_scrubber(target),
                )
            delay = self._retry_delay(target, call, response, attempt)
            if delay is None or attempt >= allowed:
                return Exchange(response, attempt)
            await self._wait(target, call, attempt, str(status), delay)

    async def _attempt(
        self, target: Target, call: Call, url: str, token: str | None, attempt: int
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else None
        self._stats.requests += 1
        started = time.perf_counter()
        outcome: object = "error"
        try:
            response = await self._wire.exchange(call.method, url, call.json, headers)
            outcome = response.status_code
            return response
        except (httpx.RequestError, BodyTooLarge) as exc:
            outcome = type(exc).__name__
            raise
        finally:
            if log.isEnabledFor(logging.DEBUG):
                elapsed_ms = (time.perf_counter() - started) * 1000
                log.debug(
                    "%s %s %s -> %s in %.0f ms (attempt %d)",
                    target.name, call.method, call.path, outcome, elapsed_ms, attempt,
                )  # fmt: skip

    def _retry_delay(
        self, target: Target, call: Call, response: Reply, attempt: int
    ) -> float | None:
        """Seconds to wait before repeating `call`, or None when it is not repeated."""
        status = response.status_code
        if status == 429:
            self._stats.responses_429 += 1
        elif status not in _RETRY_STATUSES or not call.idempotent:
            return None
        wait = retry_after_s(response.headers.get("retry-after"))
        if wait is None or status not in _RETRY_AFTER_STATUSES:
            return self._backoff(attempt)
        limit = self._options.max_retry_after_s
        refusal = retry_refusal(wait)  # past the deadline of the tenant's step
        if wait > limit:
            refusal = f"longer than the {limit:.0f} s this tool waits"
        if refusal is not None:
            detail = error_detail(response, self.free_text_scrubber(target))
            raise ApiError(
                f"{call.label} on {target.name} was refused {detail.where(status)} with "
                f"Retry-After {wait:.0f} s, {refusal}; try again later",
                tenant=target.name,
                status=status,
                code=detail.code,
            )
        return wait

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        options = self._options
        ceiling = min(options.backoff_max_s, options.backoff_base_s * 2 ** min(attempt - 1, 30))
        return random.uniform(0, ceiling)

    async def _wait(
        self, target: Target, call: Call, attempt: int, reason: str, delay: float | None
    ) -> None:
        if delay is None:
            delay = self._backoff(attempt)
        self._stats.retries += 1
        log.info(
            "%s: retrying %s %s in %.1f s after %s (attempt %d of %d)",
            target.name, call.method, call.path, delay, reason, attempt + 1,
            1 + self._options.max_retries,
        )  # fmt: skip
        await self._options.sleep(delay)

    async def _pace(self, endpoint: Endpoint, tier: int) -> None:
        window = endpoint.tier1 if tier == 1 else endpoint.tier2
        if window is not None:
            await window.acquire()

    async def _token(self, target: Target) -> str:
        credentials = target.credentials
        if isinstance(credentials, ApiKeyCredentials):
            return credentials.key.reveal()
        cache = target.endpoint.token
        if cache is None:  # pragma: no cover - endpoints of OAuth targets always have one
            raise RuntimeError("OAuth target without a token cache")
        return await cache.get(lambda: self._fetch_token(target, credentials))

    async def _fetch_token(
        self, target: Target, credentials: OAuthCredentials
    ) -> tuple[str, float]:
        self._stats.token_fetches += 1
        body = token_request_body(credentials)
        call = Call("token request", "POST", TOKEN_PATH, tier=2, json=body, authenticated=False)
        exchange = await self.send(target, call)
        response = exchange.response
        status = response.status_code
        if status in _TOKEN_REFUSED:
            detail = error_detail(response, self.free_text_scrubber(target))
            text = f": {detail.text}" if detail.text else ""
            raise AuthError(
                f"OAuth client credentials refused by {target.name} {detail.where(status)}{text}",
                tenant=target.name,
                status=status,
                code=detail.code,
            )
        if not response.is_success:
            lead = f"token request failed on {target.name}"
            raise error_for(
                response,
                tenant=target.name,
                lead=lead,
                attempts=exchange.attempts,
                clean=self.free_text_scrubber(target),
            )
        try:
            token, lifetime = parse_token_response(response.json())
        except ValueError as exc:
            raise ApiError(
                f"the token endpoint of {target.name} gave no usable token: {exc}",
                tenant=target.name,
                status=status,
            ) from None
        # Before anything could print it: from this server's text (`Endpoint.issued`),
        # and from log records and tracebacks, never from the rest of the output.
        issued = target.endpoint.issued
        if issued is not None:  # pragma: no branch - endpoints of OAuth targets have one
            issued.add(token)
        self.scrubber.add_for_logs(token)
        return token, lifetime
