"""The sandbox SMTP server, spoken to directly with smtplib."""

from __future__ import annotations

import base64
import smtplib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from reconciler.sandbox import Sandbox, SandboxTenant
from reconciler.sandbox.identity import IdentityToken

LOCAL = "client.localhost"  # no DNS lookup for EHLO


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(tenants=2, seed=2) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def trusted(sb: Sandbox) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=sb.smtp_ca_pem)


@pytest.fixture
def tenant(sb: Sandbox) -> SandboxTenant:
    return sb.tenants[0]


def message(sender: str, recipient: str, subject: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, recipient, subject
    mail.set_content("body text")
    return mail


def test_the_plain_listener_offers_auth_without_tls(sb: Sandbox, tenant: SandboxTenant) -> None:
    with smtplib.SMTP(sb.smtp_host, sb.smtp_ports["none"], LOCAL, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("auth") and not smtp.has_extn("starttls")
        assert smtp.login(tenant.smtp_username, tenant.smtp_password)[0] == 235


def test_the_starttls_listener_offers_auth_only_after_starttls(
    sb: Sandbox, tenant: SandboxTenant, trusted: ssl.SSLContext
) -> None:
    with smtplib.SMTP(sb.smtp_host, sb.smtp_ports["StartTLS"], LOCAL, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls") and not smtp.has_extn("auth")
        smtp.starttls(context=trusted)
        smtp.ehlo()
        assert smtp.has_extn("auth")
        assert smtp.login(tenant.smtp_username, tenant.smtp_password)[0] == 235


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_tls_listener_presents_a_certificate_from_the_sandbox_ca(
    sb: Sandbox, tenant: SandboxTenant, trusted: ssl.SSLContext, host: str
) -> None:
    with smtplib.SMTP_SSL(
        host, sb.smtp_ports["SSL/TLS"], LOCAL, timeout=10, context=trusted
    ) as smtp:
        assert smtp.login(tenant.smtp_username, tenant.smtp_password)[0] == 235


def test_the_certificate_is_not_trusted_by_the_system(sb: Sandbox) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(
            sb.smtp_host,
            sb.smtp_ports["SSL/TLS"],
            LOCAL,
            timeout=10,
            context=ssl.create_default_context(),
        )


def test_a_wrong_password_is_535(sb: Sandbox, tenant: SandboxTenant) -> None:
    with smtplib.SMTP(sb.smtp_host, sb.smtp_ports["none"], LOCAL, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            smtp.login(tenant.smtp_username, "not-the-password")
        assert refused.value.smtp_code == 535


def test_mail_needs_auth_first(sb: Sandbox) -> None:
    with smtplib.SMTP(sb.smtp_host, sb.smtp_ports["none"], LOCAL, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.mail("someone@example.com")[0] == 530


def test_accepted_mail_lands_in_the_mailbox(sb: Sandbox, tenant: SandboxTenant) -> None:
    with smtplib.SMTP(sb.smtp_host, sb.smtp_ports["none"], LOCAL, timeout=10) as smtp:
        smtp.login(tenant.smtp_username, tenant.smtp_password)
        refused = smtp.send_message(
            message(tenant.email_address, "ops@example.com", "Direct"),
            to_addrs=["ops@example.com", "ghost@reject.example"],
        )
    assert list(refused) == ["ghost@reject.example"]
    (received,) = sb.mailbox.for_recipient("OPS@example.com")
    assert (received.subject, received.body, received.login) == ("Direct", "body text", tenant.name)
    assert received.envelope_to == received.recipients == ("ops@example.com",)
    assert received in list(sb.mailbox) and sb.mailbox[-1] == received


def test_xoauth2_accepts_identity_tokens_only(sb: Sandbox, tenant: SandboxTenant) -> None:
    token = sb.identity.request_token(
        tenant.m365_provider_tenant_id, tenant.m365_client_id, tenant.m365_client_secret
    )
    assert isinstance(token, IdentityToken)
    for value, expected in ((token.value, 235), ("forged", 535)):
        blob = f"user={tenant.email_address}\x01auth=Bearer {value}\x01\x01".encode()
        with smtplib.SMTP(sb.smtp_host, sb.smtp_ports["none"], LOCAL, timeout=10) as smtp:
            smtp.ehlo()
            code, _ = smtp.docmd("AUTH", "XOAUTH2 " + base64.b64encode(blob).decode())
            assert code == expected
