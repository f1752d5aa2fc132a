"""From failed exchanges to exceptions whose messages a user can act on.

Every text that comes from the server, or from an exception, passes the
session's scrubber (`reconciler.scrub`: every secret the process knows, in
every spelling it looks for) before it is put in a message: a misbehaving
server may echo the request. Scrubbing happens before truncation, so no
prefix of a secret survives either.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable
from datetime import timezone

import httpx

from reconciler.client.reply import Reply
from reconciler.client.wire import ResponseDeadline
from reconciler.errors import ApiError, AuthError, NotAdminError
from reconciler.values import valueclass

# Server text kept in a message (error titles, verify and test-mail answers): enough
# for an SMTP server's multi-line reply, bounded against a hostile server.
MAX_DETAIL = 1000
MAX_CODE = 64  # characters of a server's error code kept
NOT_ADMIN_CODE = "ROLECHECK-1"

Clean = Callable[[str], str]  # a scrubber's `scrub`


def scrub(text: str, clean: Clean, limit: int = MAX_DETAIL) -> str:
    """`text` scrubbed by `clean`, then whitespace collapsed and truncated."""
    text = " ".join(clean(text).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


@valueclass
class ErrorDetail:
    """The first error code of a response body and its scrubbed titles."""

    code: str | None
    text: str

    def where(self, status: int) -> str:
        return f"({status} {self.code})" if self.code else f"({status})"


def error_detail(response: Reply, clean: Clean) -> ErrorDetail:
    """What an error response says: `{errors: [{code, title}]}`, an OAuth
    `{error, error_description}`, or else its raw text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code: str | None = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        items = [item for item in body["errors"] if isinstance(item, dict)]
        code = next((str(item["code"]) for item in items if item.get("code")), None)
        text = "; ".join(str(item["title"]) for item in items if item.get("title"))
    elif isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body["error"]
        text = str(body.get("error_description") or "")
    else:
        text = response.text
    return ErrorDetail(code=scrub(code, clean, MAX_CODE) if code else None, text=scrub(text, clean))


def error_for(
    response: Reply,
    *,
    tenant: str,
    lead: str,
    attempts: int,
    clean: Clean,
    hint: str = "",
) -> ApiError:
    """The exception for an error response: `lead` says what failed, on which tenant."""
    status = response.status_code
    detail = error_detail(response, clean)
    if status == 403 and detail.code == NOT_ADMIN_CODE:
        return NotAdminError(
            f"the credentials are not a tenant admin on {tenant} (403 {NOT_ADMIN_CODE})",
            tenant=tenant,
            status=status,
            code=detail.code,
        )
    kind = ApiError
    if status == 401:
        kind, lead = AuthError, f"the credentials were refused by {tenant}"
    after = f" after {attempts} attempts" if attempts > 1 else ""
    text = f": {detail.text}" if detail.text else ""
    message = f"{lead} {detail.where(status)}{after}{text}{hint}"
    return kind(message, tenant=tenant, status=status, code=detail.code)


def describe_transport_error(exc: httpx.RequestError) -> str:
    """What went wrong on the wire, in words (no request content is involved)."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, ResponseDeadline):
        return text
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.ReadTimeout):
        return "timed out waiting for the response"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in lowered:
            return "connection refused"
        if any(s in lowered for s in ("name or service", "nodename", "getaddrinfo", "resolution")):
            return "the host name does not resolve"
        if "certificate" in lowered:
            return f"TLS certificate verification failed ({text})"
        return f"connection failed ({text or type(exc).__name__})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection unexpectedly"
    if isinstance(exc, httpx.DecodingError):
        return (
            f"the response could not be decoded ({text})"
            if text
            else "the response could not be decoded"
        )
    if isinstance(exc, httpx.ProxyError):
        return f"the proxy failed ({text})"
    return f"{type(exc).__name__} ({text})" if text else type(exc).__name__


def is_retryable(exc: httpx.RequestError) -> bool:
    """Transient network trouble: worth another attempt for an idempotent call."""
    if isinstance(exc, httpx.ConnectError) and "certificate" in str(exc).lower():
        return False
    return isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError))


def unreachable(
    url: str, exc: httpx.RequestError, *, tenant: str, attempts: int, clean: Clean
) -> ApiError:
    """The exception for a request that got no response."""
    plural = "s" if attempts != 1 else ""
    what = scrub(describe_transport_error(exc), clean)
    return ApiError(
        f"could not reach {url}: {what} after {attempts} attempt{plural}", tenant=tenant
    )


def redirected(response: Reply, *, tenant: str, label: str, clean: Clean) -> ApiError:
    """The exception for a 3xx: redirects are never followed, so credentials stay on one host."""
    location = response.headers.get("location", "")
    location = scrub(location.split("?", 1)[0].split("#", 1)[0], clean) or "(no location)"
    return ApiError(
        f"{label} on {tenant} was redirected ({response.status_code}) to {location}: redirects "
        "are not followed so that credentials are never sent elsewhere; check the tenant URL",
        tenant=tenant,
        status=response.status_code,
    )


def oversized(status: int, limit: int, *, tenant: str, label: str) -> ApiError:
    """The exception for a response body over `max_response_bytes`: the API's are
    small, so this is not the API, and not worth another attempt."""
    return ApiError(
        f"{label} on {tenant} answered {status} with a body of more than {limit} bytes, "
        "the most this tool reads (max_response_bytes); check the tenant URL",
        tenant=tenant,
        status=status,
    )


def retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, when.timestamp() - time.time())
    return max(0.0, seconds) if not math.isnan(seconds) else None
