"""Builders shared by the tests: desired and live state without any I/O."""

from __future__ import annotations

from typing import Any

from reconciler.client.live import normalize
from reconciler.model import ApiKeyAuth, DesiredEmail, LiveState, Provider, SourcePos, TenantSpec
from reconciler.secrets import SecretRef

SMTP = {
    "serverAddress": "smtp.example.com",
    "serverPort": 587,
    "securityType": "StartTLS",
    "username": "mailer",
    "emailAddress": "qlik@example.com",
    "senderName": "Qlik",
}
M365 = {
    "clientId": "11111111-1111-1111-1111-111111111111",
    "providerTenantId": "22222222-2222-2222-2222-222222222222",
    "emailAddress": "qlik@example.com",
}


def spec(name: str, email: DesiredEmail | None) -> TenantSpec:
    return TenantSpec(
        name=name,
        url=f"https://{name}.eu.qlikcloud.com",
        auth=ApiKeyAuth(SecretRef("env", "QLIK_API_KEY")),
        email=email,
        source=SourcePos(f"tenants/{name}.yaml"),
    )


def basic(**overrides: Any) -> DesiredEmail:
    return DesiredEmail.of(
        Provider.BASIC_AUTH, {**SMTP, **overrides}, SecretRef("env", "SMTP_PASSWORD")
    )


def m365(**overrides: Any) -> DesiredEmail:
    return DesiredEmail.of(
        Provider.MICROSOFT365, {**M365, **overrides}, SecretRef("env", "M365_SECRET")
    )


def live_basic(password_exists: bool = True, **overrides: Any) -> LiveState:
    fields = {**SMTP, **overrides}
    return normalize(
        {
            "serviceProvider": "BasicAuth",
            "providerConfig": fields,
            **{k: v for k, v in fields.items() if k != "senderName"},
            "passwordExists": password_exists,
            "isValid": True,
            "errorCode": "OK",
            "authFailures": 0,
            "modificationTime": "2026-11-01T10:00:00.000Z",
        }
    )


def live_m365(**overrides: Any) -> LiveState:
    return normalize(
        {
            "serviceProvider": "Microsoft365",
            "providerConfig": {**M365, **overrides},
            "passwordExists": True,
            "isValid": True,
        }
    )


def live_none() -> LiveState:
    return normalize({"isValid": False, "passwordExists": False})
