"""Normalisation of the live state the Transports API returns.

The API returns one of three shapes:

- no configuration: exactly `{isValid: false, passwordExists: false}` (200, not 404);
- a configuration made by PUT: `serviceProvider` and a *flat* `providerConfig`
  (plus, for BasicAuth, the same values repeated as top-level fields);
- a legacy configuration made by the deprecated PATCH: only the top-level
  fields `serverAddress`, `serverPort`, `securityType`, `username`,
  `emailAddress`, and no `serviceProvider`.

All become a `LiveState` whose `email` is None (absent) or a `LiveEmail`.
Every string taken from the answer passes `clean` (the session's scrubber):
a server may echo a secret into any field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.model import (
    PROVIDER_FIELDS,
    Health,
    LiveEmail,
    LiveState,
    Provider,
    Scalar,
    fingerprint,
)

LEGACY_FIELDS = ("serverAddress", "serverPort", "securityType", "username", "emailAddress")
# Some API versions nest the flat object under its schema name; accept both.
_NESTED_KEYS = (
    "getBasicAuthConfig",
    "getMicrosoft365Config",
    "putBasicAuthConfig",
    "putMicrosoft365Config",
)


Clean = Callable[[str], str]


def _same(text: str) -> str:
    return text


def normalize(raw: Mapping[str, Any], clean: Clean = _same, free: Clean | None = None) -> LiveState:
    """Turn a GET /api/v1/transports/email-config body into a LiveState; values
    pass `clean`, free text (errorCode, statusReason) `free` (default `clean`)."""
    email = _email(raw, clean)
    health = _health(raw, clean, free or clean)
    return LiveState(email=email, health=health, fingerprint=live_fingerprint(email, health))


def live_fingerprint(email: LiveEmail | None, health: Health) -> str:
    """A digest of the live configuration (not of its health counters), used to
    refuse applying a saved plan to a tenant that changed since the plan."""
    document = {
        "email": None
        if email is None
        else {
            "provider": email.provider.value,
            "fields": dict(email.fields),
            "secretExists": email.secret_exists,
            "legacy": email.legacy,
        },
        "modificationTime": health.modification_time,
    }
    return fingerprint(document)


def _email(raw: Mapping[str, Any], clean: Clean) -> LiveEmail | None:
    provider_name = raw.get("serviceProvider")
    config = _provider_config(raw.get("providerConfig"))
    legacy_values = {k: raw[k] for k in LEGACY_FIELDS if raw.get(k) not in (None, "")}
    if not provider_name and not config and not legacy_values:
        return None
    provider = _provider(provider_name)
    values: dict[str, Any] = dict(legacy_values) if provider is Provider.BASIC_AUTH else {}
    values.update({k: v for k, v in config.items() if v not in (None, "")})
    fields = tuple(
        sorted(
            (k, _scalar(k, v, clean)) for k, v in values.items() if k in PROVIDER_FIELDS[provider]
        )
    )
    return LiveEmail(
        provider=provider,
        fields=fields,
        secret_exists=bool(raw.get("passwordExists")),
        legacy=not provider_name,
    )


def _provider(name: object) -> Provider:
    # A legacy (PATCH-made) configuration has no serviceProvider: it is SMTP basic auth.
    if name == Provider.MICROSOFT365.value:
        return Provider.MICROSOFT365
    return Provider.BASIC_AUTH


def _provider_config(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key in _NESTED_KEYS and isinstance(inner, Mapping):
            return dict(inner)
    return dict(value)


def _scalar(name: str, value: Any, clean: Clean) -> Scalar:
    # Ports arrive as numbers (587 or 587.0), or as strings from the deprecated PATCH.
    if name == "serverPort":
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return clean(str(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return clean(value if isinstance(value, str) else str(value))


def _text(value: object, clean: Clean) -> str | None:
    return clean(value) if isinstance(value, str) else None


def _health(raw: Mapping[str, Any], clean: Clean, free: Clean) -> Health:
    status = raw.get("status") if isinstance(raw.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    failures = raw.get("authFailures")
    code = status.get("statusCode")
    return Health(
        is_valid=raw.get("isValid") if isinstance(raw.get("isValid"), bool) else None,
        error_code=_text(raw.get("errorCode"), free),
        auth_failures=int(failures) if isinstance(failures, (int, float)) else None,
        status_code=int(code) if isinstance(code, (int, float)) else None,
        status_reason=_text(status.get("statusReason"), free),
        modification_time=_text(raw.get("modificationTime"), clean),
    )
