"""One tenant's stored e-mail configuration, its health, and how GET shows it.

A configuration made by PUT has a `serviceProvider` and is shown both as the
flat `providerConfig` and (BasicAuth only) as the top-level legacy fields. A
configuration made by the deprecated PATCH (or `Sandbox.seed_legacy`) has
only the legacy fields: no `serviceProvider`, no `providerConfig`.

Health follows the checks the sandbox really performs:

    outcome       isValid   errorCode            authFailures
    ok            true      OK                   reset to 0
    credentials   false     INVALID_CREDENTIALS  +1   (SMTP 535, AADSTS7000215, ...)
    connection    false     PROVIDER_ERROR       unchanged (refused, TLS mismatch, ...)
    incomplete    false     INCOMPLETE_CONFIG    unchanged (legacy config missing fields)

A failed PUT records its outcome the same way but leaves `isValid` alone:
the stored configuration is still the old one, which the failure says nothing
about. `status.statusCode` is a fixed number per errorCode (OK 0, CONFIG_NOT_SET
1, INCOMPLETE_CONFIG 2, INVALID_CREDENTIALS 3, PROVIDER_ERROR 4) and
`status.statusReason` the message of the last check. `modificationTime` moves
when the configuration changes, `lastUpdated` whenever the record changes.

Nothing here does I/O or locking; the caller holds the tenant directory lock.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox.clock import iso_timestamp

FieldValue = str | int
PROVIDERS = ("BasicAuth", "Microsoft365")
SECURITY_TYPES = ("none", "StartTLS", "SSL/TLS")
# The non-secret fields of each kind of configuration, in the order GET shows them.
FIELDS: dict[str | None, tuple[str, ...]] = {
    "BasicAuth": (
        "serverAddress",
        "serverPort",
        "securityType",
        "username",
        "emailAddress",
        "senderName",
    ),
    "Microsoft365": ("clientId", "emailAddress", "providerTenantId"),
    None: ("serverAddress", "serverPort", "securityType", "username", "emailAddress"),
}
REQUIRED: dict[str | None, tuple[str, ...]] = {
    "BasicAuth": FIELDS[None],
    "Microsoft365": FIELDS["Microsoft365"],
    None: FIELDS[None],
}
# The write-only field of each kind: never shown by GET.
SECRET_FIELD: dict[str | None, str] = {
    "BasicAuth": "emailPassword",
    "Microsoft365": "clientSecret",
    None: "emailPassword",
}
LEGACY_TOP_LEVEL = FIELDS[None]
STATUS_CODES = {
    "OK": 0,
    "CONFIG_NOT_SET": 1,
    "INCOMPLETE_CONFIG": 2,
    "INVALID_CREDENTIALS": 3,
    "PROVIDER_ERROR": 4,
}
HEALTH_FIELDS = ("isValid", "errorCode", "authFailures")
_ERROR_FOR_OUTCOME = {
    "ok": "OK",
    "credentials": "INVALID_CREDENTIALS",
    "connection": "PROVIDER_ERROR",
    "incomplete": "INCOMPLETE_CONFIG",
}


@dataclass(slots=True)
class StoredConfig:
    """A stored configuration. `provider` None means a legacy (PATCH-made) one."""

    provider: str | None
    fields: dict[str, FieldValue]
    secret: str | None = None

    @property
    def secret_field(self) -> str:
        return SECRET_FIELD[self.provider]

    def copy(self) -> StoredConfig:
        return StoredConfig(self.provider, dict(self.fields), self.secret)

    def missing_fields(self) -> str:
        """The required fields (secret included) not set, comma-separated; "" if none."""
        missing = [name for name in REQUIRED[self.provider] if self.fields.get(name) in (None, "")]
        if not self.secret:
            missing.append(self.secret_field)
        return ", ".join(missing)


@dataclass(slots=True)
class TenantState:
    """What the sandbox stores for one tenant: the configuration and its health."""

    tenant_id: str
    config: StoredConfig | None = None
    object_id: str = ""
    is_valid: bool = False
    error_code: str = "CONFIG_NOT_SET"
    auth_failures: int = 0
    status_reason: str = "Email configuration not set"
    modification_time: float = 0.0
    last_updated: float = 0.0


def tenant_id_for(name: str) -> str:
    """A stable Qlik-looking tenant id (32 URL-safe characters) for a tenant name."""
    digest = hashlib.blake2b(name.encode(), digest_size=24, person=b"qlik-tenant-id").digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def view(state: TenantState) -> dict[str, Any]:
    """The GET body: never a secret."""
    config = state.config
    if config is None:
        return {"isValid": False, "passwordExists": False}
    body: dict[str, Any] = {"_id": state.object_id, "tenantId": state.tenant_id}
    shown = {k: config.fields[k] for k in FIELDS[config.provider] if k in config.fields}
    if config.provider is not None:
        body["serviceProvider"] = config.provider
        body["providerConfig"] = shown
    if config.provider in (None, "BasicAuth"):
        body.update({k: v for k, v in shown.items() if k in LEGACY_TOP_LEVEL})
    body.update(
        passwordExists=bool(config.secret),
        isValid=state.is_valid,
        errorCode=state.error_code,
        authFailures=state.auth_failures,
        status={
            "statusCode": STATUS_CODES.get(state.error_code, 4),
            "statusReason": state.status_reason,
        },
        modificationTime=iso_timestamp(state.modification_time),
        lastUpdated=iso_timestamp(state.last_updated),
    )
    return body


def secret_view(state: TenantState) -> dict[str, Any] | None:
    """The stored configuration with its secret (for tests), or None."""
    config = state.config
    if config is None:
        return None
    fields: dict[str, Any] = dict(config.fields)
    if config.secret is not None:
        fields[config.secret_field] = config.secret
    if config.provider is None:
        return fields
    return {"serviceProvider": config.provider, "providerConfig": fields}


def replace(state: TenantState, config: StoredConfig, now: float) -> None:
    """Store a configuration that has just been validated (a successful PUT)."""
    state.config = config
    if not state.object_id:
        state.object_id = _object_id(now)
    state.modification_time = now
    record(state, "ok", "OK", now)


def record(
    state: TenantState, outcome: str, reason: str, now: float, *, keep_validity: bool = False
) -> None:
    """Record the outcome of a real check against the stored configuration."""
    if state.config is None:
        # Nothing is stored, so there is nothing whose health could change.
        return
    error_code = _ERROR_FOR_OUTCOME[outcome]
    if not keep_validity:
        state.is_valid = error_code == "OK"
    state.error_code = error_code
    if outcome == "ok":
        state.auth_failures = 0
    elif outcome == "credentials":
        state.auth_failures += 1
    state.status_reason = reason
    state.last_updated = now


def delete(state: TenantState) -> bool:
    """Forget the configuration; False when there was none."""
    if state.config is None:
        return False
    state.config = None
    state.object_id = ""
    state.is_valid = False
    state.error_code = "CONFIG_NOT_SET"
    state.auth_failures = 0
    state.status_reason = "Email configuration not set"
    return True


def set_legacy_fields(state: TenantState, fields: dict[str, Any], now: float) -> None:
    """Apply legacy top-level fields (PATCH, seed_legacy) without connecting anywhere.

    As with the real PATCH, the result is valid when it is complete: PATCH
    never checked the credentials.
    """
    config = state.config if state.config is not None else StoredConfig(None, {})
    for name, value in fields.items():
        _set_field(config, name, value)
    state.config = config
    if not state.object_id:
        state.object_id = _object_id(now)
    state.modification_time = now
    missing = config.missing_fields()
    if missing:
        record(state, "incomplete", "Incomplete configuration: missing " + missing, now)
    else:
        record(state, "ok", "OK", now)


def edit(state: TenantState, changes: dict[str, Any], now: float) -> None:
    """Change stored fields behind the tool's back (secret and health included)."""
    config = state.config
    if config is None:
        raise ValueError("the tenant has no email configuration to edit; seed one first")
    allowed = {*FIELDS[config.provider], config.secret_field, *HEALTH_FIELDS}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValueError(
            f"cannot edit {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    for name, value in changes.items():
        if name == "isValid":
            state.is_valid = bool(value)
        elif name == "errorCode":
            state.error_code = str(value)
        elif name == "authFailures":
            state.auth_failures = int(value)
        else:
            _set_field(config, name, value)
            # Only a change of the configuration itself is a modification.
            state.modification_time = now
    state.last_updated = now


def _set_field(config: StoredConfig, name: str, value: Any) -> None:
    if name == config.secret_field:
        config.secret = None if value is None else str(value)
    elif value is None:
        config.fields.pop(name, None)
    else:
        config.fields[name] = value


def _object_id(now: float) -> str:
    """A MongoDB ObjectId-like `_id`: 4 bytes of time, 8 random bytes."""
    return f"{int(now) & 0xFFFFFFFF:08x}{os.urandom(8).hex()}"
