"""Pure translations between our model and the API's JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.client.failures import MAX_DETAIL
from reconciler.client.options import SmtpResult
from reconciler.errors import RequestError
from reconciler.model import PROVIDER_FIELDS, SECRET_FIELD, DesiredEmail, Scalar
from reconciler.secrets import Secret

# Configuration-language names that the API spells differently; all others match.
_API_NAMES: Mapping[str, str] = {"password": "emailPassword"}
_NUMERIC_FIELDS = frozenset({"serverPort"})


def build_put_body(email: DesiredEmail, secret: Secret) -> dict[str, Any]:
    """The JSON body of `PUT /api/v1/transports/email-config` for `email`.

    `providerConfig` is one flat object: `putBasicAuthConfig` and
    `putMicrosoft365Config` in the spec are schema names, not JSON keys. A PUT
    replaces the whole configuration, so the secret (`emailPassword` or
    `clientSecret`) is always sent; this is the one place it is revealed.
    """
    provider = email.provider
    known = PROVIDER_FIELDS[provider]
    config: dict[str, Any] = {}
    for name, value in email.fields:
        if name not in known:
            raise RequestError(f"{name!r} is not a {provider.value} field")
        config[_API_NAMES.get(name, name)] = _api_value(name, value)
    secret_name = SECRET_FIELD[provider]
    config[_API_NAMES.get(secret_name, secret_name)] = secret.reveal()
    return {"serviceProvider": provider.value, "providerConfig": config}


def _api_value(name: str, value: Scalar) -> Scalar:
    if name in _NUMERIC_FIELDS and not isinstance(value, int):
        try:
            return int(value)
        except ValueError:
            raise RequestError(f"{name} must be a number, not {value!r}") from None
    return value


MAX_MESSAGE = MAX_DETAIL  # characters of a verify / test-mail message kept


def _same(text: str) -> str:
    return text


def parse_smtp_result(body: Mapping[str, Any], clean: Callable[[str], str] = _same) -> SmtpResult:
    """An `SmtpResult` from a verify-connection / send-test-email 200 body; every
    string passes `clean` (the session's scrubber), the message is cut to MAX_MESSAGE."""
    message = " ".join(clean(str(body.get("message") or "")).split())
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return SmtpResult(
        success=body.get("success") is True,
        connection_failed=body.get("connectionFailed") is True,
        message=message,
        smtp_response_code=_response_code(body.get("smtpResponseCode")),
        accepted=tuple(clean(s) for s in _strings(body.get("accepted"))),
        rejected=tuple(clean(s) for s in _strings(body.get("rejected"))),
    )


def _response_code(value: object) -> int | None:
    # The spec types it as an integer but describes it as "250 2.6.0": accept both.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        digits = value.strip()[:3]
        return int(digits) if digits.isdigit() else None
    return None


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(item) for item in value)
