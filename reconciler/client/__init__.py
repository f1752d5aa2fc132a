"""The Transports email-config API of Qlik Cloud tenants, over httpx and aiohttp (asyncio).

Built for fleets: one `ApiSession` serves thousands of tenants from one event
loop, many in flight at once.

    async with ApiSession(ClientOptions()) as session:
        acme = session.tenant("acme", "https://acme.eu.qlikcloud.com", ApiKeyCredentials(key))
        live = await acme.get_email_config()
        await acme.put_email_config(desired_email, secret)
        result = await acme.verify_connection()

Behaviour:

- auth: a Bearer API key, or OAuth2 client credentials whose token is cached
  per (tenant, client), shared by concurrent callers, refreshed 60 s before
  expiry and once after a 401;
- retries: the policy is written once, in `sender` (idempotent calls after
  connection errors, timeouts and 500/502/503/504; every call after a 429;
  send-test-email, which is not idempotent, only after a 429);
- pacing: per (tenant, credentials), at most `tier1_per_minute` GETs and
  `tier2_per_minute` other calls (PUT, DELETE, actions, tokens) in any 60 s;
- the wire (see `wire`, `transport`): httpx requests over one aiohttp
  transport per session, `connections` requests at a time; each attempt must complete,
  response body included, within `timeout_s`; a body over
  `max_response_bytes` (on the wire, or from any layer of its Content-Encoding
  as it is decoded: `decoding`), or JSON nested deeper than 32 levels, is an
  ApiError; no cookies are kept;
- deadlines (see `deadline`): the engine runs each tenant's step within its
  deadline; a `Retry-After` longer than what is left is an ApiError at once;
- TLS is always verified (`tls`), proxies come from the environment as httpx
  reads them (`transport.environment_routes`), redirects are errors; nothing
  logged or raised holds a body, header, token or secret.

Exceptions (from `reconciler.errors`), each naming the tenant:

    ApiError            status (None if no response), code, actionable message:
                        connection failures and timeouts after retries,
                        4xx/5xx, redirects, a body over `max_response_bytes`,
                        a 2xx without a usable JSON object,
                        a Retry-After longer than `max_retry_after_s`,
                        404 on verify-connection / send-test-email (no config)
    +-- AuthError       401 from the API (after one token refresh), or the token
                        endpoint refusing the OAuth client
    +-- NotAdminError   403 ROLECHECK-1: the credentials are not a tenant admin
"""

from __future__ import annotations

from reconciler.client.body import build_put_body, parse_smtp_result
from reconciler.client.options import (
    ApiKeyCredentials,
    ClientOptions,
    Credentials,
    OAuthCredentials,
    SessionStats,
    SmtpResult,
)
from reconciler.client.session import ApiSession
from reconciler.client.tenant import TenantClient

__all__ = [
    "ApiKeyCredentials",
    "ApiSession",
    "ClientOptions",
    "Credentials",
    "OAuthCredentials",
    "SessionStats",
    "SmtpResult",
    "TenantClient",
    "build_put_body",
    "parse_smtp_result",
]
