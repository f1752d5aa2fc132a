"""The sandbox SMTP server, spoken to directly with smtplib."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from reconciler.sandbox import Sandbox, SandboxTenant
from reconciler.sandbox import smtp as sandbox_smtp
from reconciler.sandbox.certs import generate
from reconciler.sandbox.clock import Clock
from reconciler.sandbox.identity import IdentityProvider, IdentityToken
from reconciler.sandbox.mailbox import Mailbox
from reconciler.sandbox.smtp import CredentialRegistry, SmtpServer
from reconciler.sandbox.smtpsession import LeanSession

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


def test_a_session_finds_the_same_commands_and_hooks_as_plain_aiosmtpd() -> None:
    # LeanSession lists only hook names to dir() (a shortcut for aiosmtpd's
    # introspection on every connection); what aiosmtpd finds must not change.
    async def make_both() -> tuple[SMTP, SMTP]:
        handler = sandbox_smtp._Handler(Mailbox(), IdentityProvider(Clock()), "none")
        options: dict[str, Any] = {"hostname": "h", "auth_require_tls": False}
        return SMTP(handler, **options), LeanSession(handler, **options)

    plain, ours = asyncio.run(make_both())
    assert ours._smtp_methods.keys() == plain._smtp_methods.keys()
    assert {k: v.is_builtin for k, v in ours._auth_methods.items()} == {
        k: v.is_builtin for k, v in plain._auth_methods.items()
    }
    assert ours._handle_hooks.keys() == plain._handle_hooks.keys()
    assert {"EHLO", "AUTH", "QUIT", "STARTTLS", "DATA"} <= ours._smtp_methods.keys()
    assert {"PLAIN", "LOGIN", "XOAUTH2"} <= ours._auth_methods.keys()


def test_a_multi_line_reply_goes_out_in_one_write() -> None:
    class Writer:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        async def drain(self) -> None:
            pass

    async def scenario() -> list[bytes]:
        handler = sandbox_smtp._Handler(Mailbox(), IdentityProvider(Clock()), "none")
        session = LeanSession(handler, hostname="h")
        session._writer = writer = Writer()
        session.session = session._create_session()
        for line in ("250-h", "250-AUTH LOGIN PLAIN", "250 HELP", "235 2.7.0 OK"):
            await session.push(line)
        return writer.writes

    assert asyncio.run(scenario()) == [
        b"250-h\r\n250-AUTH LOGIN PLAIN\r\n250 HELP\r\n",
        b"235 2.7.0 OK\r\n",
    ]


def test_an_idle_session_is_closed_after_the_last_command() -> None:
    async def scenario() -> tuple[float, bytes]:
        server = SmtpServer(
            registry=CredentialRegistry(),
            mailbox=Mailbox(),
            identity=IdentityProvider(Clock()),
            tls=generate(),
            idle_timeout_s=0.4,
        )
        ports = await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", ports["none"])
            await reader.readline()
            for _ in range(3):  # each command moves the deadline
                await asyncio.sleep(0.25)
                writer.write(b"NOOP\r\n")
                assert (await reader.readline()).startswith(b"250")
            last = time.monotonic()
            rest = await asyncio.wait_for(reader.read(), 5)  # until the server hangs up
            writer.close()
            return time.monotonic() - last, rest
        finally:
            server.close()

    idle, rest = asyncio.run(scenario())
    assert rest == b"" and 0.3 < idle < 2.0
