"""The Transports email-config operations of one tenant."""

from __future__ import annotations

from typing import Any

from reconciler.client.body import build_put_body, parse_smtp_result
from reconciler.client.failures import error_for
from reconciler.client.live import normalize
from reconciler.client.options import SmtpResult
from reconciler.client.reply import JsonTooDeep
from reconciler.client.sender import Call, Exchange, Sender, Target
from reconciler.errors import ApiError
from reconciler.model import DesiredEmail, LiveState
from reconciler.secrets import Secret

CONFIG_PATH = "/api/v1/transports/email-config"
_ACTIONS = CONFIG_PATH + "/actions"


class TenantClient:
    """The email-config API of one tenant, as one user (API key or OAuth client).

    Cheap to create: the HTTP client, token cache and pacers live in the
    `ApiSession`. Every failure raises an `ApiError` (or a subclass) naming the
    tenant. PATCH is deprecated (sunset 2026-11) and deliberately not offered.
    """

    __slots__ = ("_sender", "_target", "base_url", "name")

    def __init__(self, sender: Sender, target: Target) -> None:
        self._sender = sender
        self._target = target
        self.name = target.name
        self.base_url = target.base_url

    def __repr__(self) -> str:
        return f"TenantClient(name={self.name!r}, base_url={self.base_url!r})"

    async def get_email_config(self) -> dict[str, Any]:
        """The live configuration, as the API returns it (Tier 1). Never holds secrets;
        a tenant without configuration answers `{isValid: false, passwordExists: false}`."""
        call = Call("GET email-config", "GET", CONFIG_PATH, tier=1)
        exchange = await self._sender.send(self._target, call)
        if exchange.response.status_code == 404:
            raise self._error(exchange, call, hint="; is this the URL of a Qlik Cloud tenant?")
        return self._json_object(exchange, call)

    async def read_live(self) -> LiveState:
        """The live configuration and health, normalised (`client.live`)."""
        return normalize(
            await self.get_email_config(),
            self._sender.value_scrubber(self._target),
            self._sender.free_text_scrubber(self._target),
        )

    async def put_email_config(self, email: DesiredEmail, secret: Secret) -> None:
        """Create or replace the whole configuration (Tier 2). The tenant validates it
        (connects to the SMTP server, or gets a Microsoft 365 token) before saving;
        a refusal is an ApiError with the server's reasons, and the old config stays."""
        call = Call(
            "PUT email-config", "PUT", CONFIG_PATH, tier=2, json=build_put_body(email, secret)
        )
        self._sender.scrubber.add(secret.reveal())  # the caller's resolver knows it too
        exchange = await self._sender.send(self._target, call)
        if not exchange.response.is_success:
            lead = f"PUT rejected by {self.name}" if exchange.response.status_code == 400 else None
            raise self._error(exchange, call, lead=lead)

    async def delete_email_config(self) -> bool:
        """Delete the configuration (Tier 2): True when deleted, False when there was none.

        A 404 after a retried DELETE whose first attempt may have succeeded is also
        "nothing to delete", which is the state the caller wanted."""
        call = Call("DELETE email-config", "DELETE", CONFIG_PATH, tier=2)
        exchange = await self._sender.send(self._target, call)
        if exchange.response.status_code == 404:
            return False
        if not exchange.response.is_success:
            raise self._error(exchange, call)
        return True

    async def verify_connection(self) -> SmtpResult:
        """Ask the tenant to handshake with its mail server, sending nothing (Tier 2)."""
        call = Call("verify-connection", "POST", _ACTIONS + "/verify-connection", tier=2)
        return await self._smtp_action(call, "no e-mail configuration to verify on")

    async def send_test_email(self, recipient: str, subject: str, body: str) -> SmtpResult:
        """Send a test e-mail through the active configuration (Tier 2).

        Never retried after a failure or timeout, since it may have been sent;
        only a 429 is retried, because a 429 means the request was not processed."""
        email = {"recipient": recipient, "subject": subject, "body": body}
        path = _ACTIONS + "/send-test-email"
        call = Call("send-test-email", "POST", path, tier=2, idempotent=False, json=email)
        return await self._smtp_action(
            call, "no e-mail configuration to send a test e-mail with on"
        )

    async def _smtp_action(self, call: Call, missing: str) -> SmtpResult:
        exchange = await self._sender.send(self._target, call)
        if exchange.response.status_code == 404:
            raise self._error(exchange, call, lead=f"{missing} {self.name}")
        return parse_smtp_result(
            self._json_object(exchange, call), self._sender.free_text_scrubber(self._target)
        )

    def _json_object(self, exchange: Exchange, call: Call) -> dict[str, Any]:
        response = exchange.response
        if not response.is_success:
            raise self._error(exchange, call)
        why = ""
        try:
            body = response.json()
        except ValueError as exc:
            body, why = None, f" ({exc})" if isinstance(exc, JsonTooDeep) else ""
        if not isinstance(body, dict):
            status = response.status_code
            raise ApiError(
                f"{call.label} on {self.name} answered {status} without a JSON object{why}",
                tenant=self.name,
                status=status,
            )
        return body

    def _error(
        self,
        exchange: Exchange,
        call: Call,
        *,
        lead: str | None = None,
        hint: str = "",
    ) -> ApiError:
        return error_for(
            exchange.response,
            tenant=self.name,
            lead=lead or f"{call.label} failed on {self.name}",
            attempts=exchange.attempts,
            clean=self._sender.free_text_scrubber(self._target),
            hint=hint,
        )
