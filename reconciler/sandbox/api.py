"""Routing and the request pipeline of the sandbox's HTTP API.

Paths are per tenant: `/t/<tenant>/api/v1/transports/email-config[...]` and
`/t/<tenant>/oauth/token`. Each request goes through, in order:

    unknown tenant / path      404 TENANT-1 / NOTFOUND-1, wrong method 405 METHOD-1
    injected faults            latency, reset, stall (504 FAULT-504), status (FAULT-<n>)
    token endpoint             rate limit per OAuth client (Tier 2), then the grant
    authentication             401 AUTH-1 "Unauthorized" (missing, unknown, expired,
                               or another tenant's credential)
    rate limit                 429 RATELIMIT-1 "Too many requests" + Retry-After
    role                       403 ROLECHECK-1 "Must be a tenant admin"
    the operation              operations.py

Faults come first, as they would at a gateway in front of the service, so a
faulted request never changes state.

Outside the API, for benchmarks and tests that run the sandbox in another
process: `GET /_sandbox/stats` answers the counters (requests, statuses, 429s,
peak in flight, server time per route) and `POST /_sandbox/reset` clears them
and the rate-limit windows. These requests are not counted. Plain requests are answered
synchronously; only those that must wait return a coroutine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from reconciler.sandbox import hostile
from reconciler.sandbox.auth import Authenticator, parse_token_request
from reconciler.sandbox.faults import NO_FAULT, FaultDecision, Faults
from reconciler.sandbox.messages import Reply, Request, Response, Streamed
from reconciler.sandbox.operations import EmailConfigOperations
from reconciler.sandbox.ratelimit import RateLimiter
from reconciler.sandbox.stats import Call, Recorder
from reconciler.sandbox.tenants import SandboxTenant, TenantDirectory

Result = Response | Awaitable[Response]
Outcome = Result | Streamed | Awaitable[Reply]  # a hostile tenant's body kinds stream
EMAIL_CONFIG = "/api/v1/transports/email-config"
TOKEN = "/oauth/token"
CONTROL = "/_sandbox/"
# path -> method -> (operation name, rate-limit tier)
ROUTES: dict[str, dict[str, tuple[str, str]]] = {
    EMAIL_CONFIG: {
        "GET": ("get", "1"),
        "PUT": ("put", "2"),
        "PATCH": ("patch", "2"),
        "DELETE": ("delete", "2"),
    },
    EMAIL_CONFIG + "/actions/verify-connection": {"POST": ("verify", "2")},
    EMAIL_CONFIG + "/actions/send-test-email": {"POST": ("send_test_email", "2")},
    EMAIL_CONFIG + "/actions/validate": {"POST": ("validate", "2")},
    TOKEN: {"POST": ("token", "2")},
}


def too_many_requests(retry_after: int) -> Response:
    return Response.error(
        429, "RATELIMIT-1", "Too many requests", [("Retry-After", str(retry_after))]
    )


class SandboxApp:
    """The `Application` the HTTP server calls."""

    def __init__(
        self,
        directory: TenantDirectory,
        operations: EmailConfigOperations,
        authenticator: Authenticator,
        limiter: RateLimiter,
        faults: Faults,
        recorder: Recorder,
    ) -> None:
        self._directory = directory
        self._auth = authenticator
        self._limiter = limiter
        self._faults = faults
        self._recorder = recorder
        ops = operations
        self._handlers: dict[str, Callable[[str, bytes], Result]] = {
            "get": lambda name, _: ops.get(name),
            "put": ops.put,
            "patch": ops.patch,
            "delete": lambda name, _: ops.delete(name),
            "validate": lambda name, _: ops.validate(name),
            "verify": lambda name, _: ops.verify(name),
            "send_test_email": ops.send_test_email,
        }

    def dispatch(self, request: Request) -> Outcome:
        if request.path.startswith(CONTROL):
            return self._control(request)
        name, sub_path = _split(request.path)
        tenant = self._directory.get(name) if name else None
        logged_path = sub_path if tenant is not None else request.path
        call = self._recorder.begin(name if tenant else "", request.method, logged_path)
        try:
            result = self._route(tenant, name, sub_path, request)
        except Exception:
            self._recorder.end(call, 500)
            raise
        if isinstance(result, Response | Streamed):
            self._recorder.end(call, result.status)
            return result
        return self._finish(call, result)

    def _control(self, request: Request) -> Response:
        """The sandbox's own endpoints (not Qlik's): counters, and resetting them."""
        if request.path == CONTROL + "stats" and request.method == "GET":
            stats = self._recorder.snapshot()
            return Response.json(
                200,
                {
                    "requests": stats.requests,
                    "byStatus": {str(k): v for k, v in sorted(stats.by_status.items())},
                    "responses429": stats.responses_429,
                    "inFlight": stats.in_flight,
                    "peakInFlight": stats.peak_in_flight,
                    "routes": self._recorder.durations(),
                },
            )
        if request.path == CONTROL + "reset" and request.method == "POST":
            self._recorder.reset()
            self._limiter.reset()
            return Response(204)
        return Response.error(404, "NOTFOUND-1", f"No route for {request.method} {request.path}")

    async def _finish(self, call: Call, pending: Awaitable[Reply]) -> Reply:
        status = 0  # stays 0 if the request is cancelled (sandbox shutting down)
        try:
            response = await pending
            status = response.status
            return response
        except Exception:
            status = 500
            raise
        finally:
            self._recorder.end(call, status)

    def _route(
        self, tenant: SandboxTenant | None, name: str, sub_path: str, request: Request
    ) -> Outcome:
        if tenant is None:
            if name:
                return Response.error(404, "TENANT-1", f"No tenant named {name}")
            return Response.error(
                404, "NOTFOUND-1", f"No route for {request.method} {request.path}"
            )
        methods = ROUTES.get(sub_path)
        if methods is None:
            return Response.error(404, "NOTFOUND-1", f"No route for {request.method} {sub_path}")
        route = methods.get(request.method)
        if route is None:
            allow = [("Allow", ", ".join(methods))]
            return Response.error(405, "METHOD-1", f"Method {request.method} not allowed", allow)
        operation, tier = route
        decision = self._faults.decide(tenant.name, token_route=operation == "token")
        if decision is NO_FAULT:
            return self._serve(tenant, operation, tier, request)
        if decision.hostile:
            return self._hostile(tenant, operation, tier, request, decision)
        if decision.is_async:
            return self._delayed(tenant, operation, tier, request, decision)
        return self._with_fault(tenant, operation, tier, request, decision)

    async def _delayed(
        self,
        tenant: SandboxTenant,
        operation: str,
        tier: str,
        request: Request,
        decision: FaultDecision,
    ) -> Response:
        # asyncio.sleep, never time.sleep: a thousand delayed requests must
        # wait side by side, not one after another. The latency counts from the
        # request's arrival, as a real service's does: a single-process sandbox
        # would otherwise add its own queueing on top of it.
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s - (time.monotonic() - request.received))
        if decision.stall_s:
            await asyncio.sleep(decision.stall_s)
            stalled = Response.error(504, "FAULT-504", "Injected stall: the gateway timed out")
            return _echo(stalled, request.body) if decision.echo_body else stalled
        result = self._with_fault(tenant, operation, tier, request, decision)
        return result if isinstance(result, Response) else await result

    def _hostile(
        self,
        tenant: SandboxTenant,
        operation: str,
        tier: str,
        request: Request,
        decision: FaultDecision,
    ) -> Outcome:
        """An adversary's answer (`sandbox.hostile`): a body kind replaces the
        answer; echoed secrets and payloads are added to every string of it."""
        seen = self._faults.remember(tenant.name, hostile.request_secrets(request))
        body = next((k for k in decision.hostile if k in hostile.BODY_KINDS), None)
        if body is not None:
            return hostile.body_reply(body)
        if "huge-writes" in decision.hostile and operation in ("put", "delete"):
            return _then_huge(self._serve(tenant, operation, tier, request))
        if "short-token" in decision.hostile and operation == "token":
            issued = self._token(tenant, request, hostile.SHORT_TOKEN)
            text = hostile.hostile_text(seen, decision.hostile)
            return hostile.rewrite(issued, text, operation=operation)
        plain = FaultDecision(
            latency_s=decision.latency_s,
            stall_s=decision.stall_s,
            status=decision.status,
            echo_body=decision.echo_body,
        )
        if plain.is_async:
            result: Result = self._delayed(tenant, operation, tier, request, plain)
        else:
            result = self._with_fault(tenant, operation, tier, request, plain)
        text = hostile.hostile_text(seen, decision.hostile)
        only = "messages-only" in decision.hostile
        invisible = "invisible" in decision.hostile
        if isinstance(result, Response):
            return hostile.rewrite(
                result, text, operation=operation, messages_only=only, invisible=invisible
            )
        return hostile.rewrite_later(
            result, text, operation=operation, messages_only=only, invisible=invisible
        )

    def _with_fault(
        self,
        tenant: SandboxTenant,
        operation: str,
        tier: str,
        request: Request,
        decision: FaultDecision,
    ) -> Result:
        if decision.reset:
            return Response.reset()
        if decision.lost:
            return _lose(self._serve(tenant, operation, tier, request))
        result = (
            _fault_response(decision.status)
            if decision.status is not None
            else self._serve(tenant, operation, tier, request)
        )
        if not decision.echo_body:
            return result
        if isinstance(result, Response):
            return _echo(result, request.body)
        return _echo_later(result, request.body)

    def _serve(self, tenant: SandboxTenant, operation: str, tier: str, request: Request) -> Result:
        if operation == "token":
            return self._token(tenant, request)
        principal = self._auth.authenticate(tenant, request.headers.get("authorization"))
        if principal is None:
            return Response.error(
                401, "AUTH-1", "Unauthorized", [("WWW-Authenticate", 'Bearer realm="qlik"')]
            )
        retry_after = self._limiter.hit(tenant.name, principal.credential, tier)
        if retry_after is not None:
            return too_many_requests(retry_after)
        if not principal.admin:
            return Response.error(403, "ROLECHECK-1", "Must be a tenant admin")
        return self._handlers[operation](tenant.name, request.body)

    def _token(self, tenant: SandboxTenant, request: Request, value: str | None = None) -> Response:
        parsed = parse_token_request(request)
        if isinstance(parsed, Response):
            return parsed
        retry_after = self._limiter.hit(tenant.name, "oauth:" + parsed.client_id, "2")
        if retry_after is not None:
            return too_many_requests(retry_after)
        return self._auth.token_response(tenant, parsed, value)


def _split(path: str) -> tuple[str, str]:
    """`/t/<tenant>/<rest>` -> (tenant, "/<rest>"); ("", path) for other paths."""
    if not path.startswith("/t/"):
        return "", path
    name, _, rest = path[3:].partition("/")
    return name, "/" + rest


def _fault_response(status: int) -> Response:
    if status == 429:
        return too_many_requests(1)
    headers = [("Retry-After", "1")] if status == 503 else []
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Response.error(status, f"FAULT-{status}", f"Injected fault: {phrase}", headers)


async def _then_huge(pending: Result) -> Reply:
    """The answer to a write that was carried out, a success made unreadable."""
    answer = pending if isinstance(pending, Response) else await pending
    return hostile.body_reply("huge") if 200 <= answer.status < 300 else answer


def _echo(response: Response, body: bytes) -> Response:
    """Append the raw request body to every error title (the echo_body fault)."""
    if response.status < 400 or not response.body:
        return response
    document = json.loads(response.body)
    echoed = body.decode("utf-8", "replace")
    for error in document.get("errors", []):
        error["title"] = f"{error['title']} (request body: {echoed})"
    return Response.json(
        response.status, document, [h for h in response.headers if h[0] != "Content-Type"]
    )


def _lose(result: Result) -> Result:
    """Let the request take effect, then drop its answer (the lost-response fault)."""
    if isinstance(result, Response):
        return Response.reset()
    return _lose_later(result)


async def _lose_later(pending: Awaitable[Response]) -> Response:
    await pending
    return Response.reset()


async def _echo_later(pending: Awaitable[Response], body: bytes) -> Response:
    return _echo(await pending, body)
