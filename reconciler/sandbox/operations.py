"""The seven email-config operations, once the caller is known to be an admin.

Error answers (all `{"errors": [{"code", "title"}]}`):

    400 INPUTCHECK-1       malformed body; one error per problem (inputcheck.py)
    400 INPUTCHECK-2       PUT: the credentials were refused
                           ("SMTP authentication failed: 535 5.7.8 ...",
                            "Microsoft 365 authentication failed: AADSTS7000215: ...")
    400 INPUTCHECK-3       PUT: the server or provider could not be used
                           ("SMTP connection failed: ...",
                            "Microsoft 365 token request failed: AADSTS90002: ...")
    400 INPUTCHECK-4       PATCH on a Microsoft365 configuration
    404 DELETE-1           DELETE without a configuration
    404 VERIFYCONNECTION-1 verify-connection without a configuration
    404 SENDTESTEMAIL-1    send-test-email without a configuration
    410 DEPRECATED-1       PATCH, unless the sandbox re-enables it

A failed PUT leaves the stored configuration as it was; its health records
the failure (see state.py). Checks run without the directory lock held, and
their outcome is recorded only if the configuration was not replaced in the
meantime.
"""

from __future__ import annotations

from typing import Any

from reconciler.sandbox.clock import Clock
from reconciler.sandbox.inputcheck import check_patch, check_put, check_test_email, parse_json
from reconciler.sandbox.messages import Response
from reconciler.sandbox.probe import Prober, ProbeResult
from reconciler.sandbox.state import StoredConfig, TenantState, delete, record, replace, view
from reconciler.sandbox.state import set_legacy_fields as apply_legacy
from reconciler.sandbox.tenants import TenantDirectory

NO_CONFIG = "No email config for tenant"
SUNSET_TITLE = "PATCH /transports/email-config was sunset in 2026-11; use PUT"
SUNSET_HEADERS = [
    # RFC 9745 (deprecated since 2025-11-01) and RFC 8594 (sunset 2026-11-01).
    ("Deprecation", "@1761955200"),
    ("Sunset", "Sun, 01 Nov 2026 00:00:00 GMT"),
    ("Link", '</api/v1/transports/email-config>; rel="successor-version"'),
]


def input_errors(problems: list[str]) -> Response:
    """One 400 carrying every problem found in a request body."""
    errors = [{"code": "INPUTCHECK-1", "title": problem} for problem in problems]
    return Response.json(400, {"errors": errors})


class EmailConfigOperations:
    """GET, PUT, PATCH, DELETE and the three actions, for one tenant at a time."""

    def __init__(self, directory: TenantDirectory, prober: Prober, clock: Clock) -> None:
        self.patch_enabled = False
        self._directory = directory
        self._prober = prober
        self._clock = clock

    def get(self, tenant: str) -> Response:
        with self._directory.lock:
            return Response.json(200, view(self._directory.state(tenant)))

    async def put(self, tenant: str, body: bytes) -> Response:
        try:
            parsed = check_put(parse_json(body))
        except ValueError as exc:
            return input_errors([str(exc)])
        if isinstance(parsed, list):
            return input_errors(parsed)
        result = await self._prober.check(parsed)
        with self._directory.lock:
            state = self._directory.state(tenant)
            now = self._clock.now()
            if result.ok:
                replace(state, parsed, now)
                return Response(204)
            code, title = _put_failure(parsed, result)
            record(state, result.outcome, title, now, keep_validity=True)
        return Response.error(400, code, title)

    def delete(self, tenant: str) -> Response:
        with self._directory.lock:
            if delete(self._directory.state(tenant)):
                return Response(204)
        return Response.error(404, "DELETE-1", NO_CONFIG)

    def patch(self, tenant: str, body: bytes) -> Response:
        if not self.patch_enabled:
            return Response.error(410, "DEPRECATED-1", SUNSET_TITLE, SUNSET_HEADERS)
        try:
            updates = check_patch(parse_json(body))
        except ValueError as exc:
            return input_errors([str(exc)])
        if isinstance(updates, list):
            return input_errors(updates)
        with self._directory.lock:
            state = self._directory.state(tenant)
            if state.config is not None and state.config.provider == "Microsoft365":
                return Response.error(
                    400, "INPUTCHECK-4", "PATCH cannot change a Microsoft365 configuration; use PUT"
                )
            apply_legacy(state, updates, self._clock.now())
        return Response(204, headers=SUNSET_HEADERS)

    def validate(self, tenant: str) -> Response:
        with self._directory.lock:
            state = self._directory.state(tenant)
            if state.config is None:
                return Response.json(200, {"isValid": False, "errorCode": "CONFIG_NOT_SET"})
            return Response.json(200, {"isValid": state.is_valid, "errorCode": state.error_code})

    async def verify(self, tenant: str) -> Response:
        config = self._current(tenant)
        if config is None:
            return Response.error(404, "VERIFYCONNECTION-1", NO_CONFIG)
        result = await self._prober.check(config.copy())
        self._record(tenant, config, result)
        return Response.json(200, _smtp_result(result))

    async def send_test_email(self, tenant: str, body: bytes) -> Response:
        config = self._current(tenant)
        if config is None:
            return Response.error(404, "SENDTESTEMAIL-1", NO_CONFIG)
        try:
            mail = check_test_email(parse_json(body))
        except ValueError as exc:
            return input_errors([str(exc)])
        if isinstance(mail, list):
            return input_errors(mail)
        result = await self._prober.send(config.copy(), mail)
        if result.outcome != "rejected":
            # A refused recipient says nothing about the configuration's health.
            self._record(tenant, config, result)
        recipients = {"accepted": list(result.accepted), "rejected": list(result.rejected)}
        if not result.ok and not result.rejected:
            recipients["rejected"] = [mail.recipient]
        return Response.json(200, {**_smtp_result(result), **recipients})

    def _current(self, tenant: str) -> StoredConfig | None:
        with self._directory.lock:
            return self._directory.state(tenant).config

    def _record(self, tenant: str, checked: StoredConfig, result: ProbeResult) -> None:
        with self._directory.lock:
            state: TenantState = self._directory.state(tenant)
            # A configuration replaced while we checked the old one keeps its own health.
            if state.config is checked:
                reason = "OK" if result.ok else result.message
                record(state, result.outcome, reason, self._clock.now())


def _put_failure(config: StoredConfig, result: ProbeResult) -> tuple[str, str]:
    microsoft = config.provider == "Microsoft365"
    if result.outcome == "credentials":
        what = "Microsoft 365 authentication" if microsoft else "SMTP authentication"
        return "INPUTCHECK-2", f"{what} failed: {result.message}"
    what = "Microsoft 365 token request" if microsoft else "SMTP connection"
    return "INPUTCHECK-3", f"{what} failed: {result.message}"


def _smtp_result(result: ProbeResult) -> dict[str, Any]:
    return {
        "success": result.ok,
        "connectionFailed": result.outcome == "connection",
        "message": result.message,
        "smtpResponseCode": result.code,
    }
