"""The sandbox SMTP server, spoken to directly with smtplib."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
import time
from collections.abc import Callable, Iterator
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


def _converse(factory: Callable[[], SMTP], *commands: bytes) -> list[bytes]:
    """The replies of a server made by `factory`, on loopback, to `commands`."""

    async def scenario() -> list[bytes]:
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            replies = [await reader.readline()]
            for command in commands:
                writer.write(command + b"\r\n")
                while True:
                    reply = await reader.readline()
                    replies.append(reply)
                    if not reply or reply[3:4] == b" ":  # closed, or a reply's last line
                        break
            writer.close()
            return replies
        finally:
            server.close()

    return asyncio.run(scenario())


def test_a_session_offers_the_same_commands_and_logins_as_plain_aiosmtpd() -> None:
    # LeanSession lists only hook names to dir() (a shortcut for aiosmtpd's
    # introspection on every connection): what aiosmtpd finds, the commands
    # HELP lists and the AUTH mechanisms EHLO offers, must not change.
    handler = sandbox_smtp._Handler(Mailbox(), IdentityProvider(Clock()), "none")
    options: dict[str, Any] = {"hostname": "h", "auth_require_tls": False}
    asked = (b"EHLO client", b"HELP", b"QUIT")
    plain = _converse(lambda: SMTP(handler, **options), *asked)
    ours = _converse(lambda: LeanSession(handler, **options), *asked)
    assert ours == plain
    offered = b"".join(ours)
    assert b"AUTH LOGIN PLAIN XOAUTH2" in offered
    for command in (b"EHLO", b"AUTH", b"QUIT", b"DATA"):
        assert command in offered.split(b"Supported commands:")[1]


class _RecordingTransport(asyncio.Transport):
    """What a session writes, one entry per write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 2525) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def test_a_multi_line_reply_goes_out_in_one_write() -> None:
    async def scenario() -> list[bytes]:
        handler = sandbox_smtp._Handler(Mailbox(), IdentityProvider(Clock()), "none")
        session = LeanSession(handler, hostname="h")
        transport = _RecordingTransport()
        session.connection_made(transport)  # asyncio's protocol API
        await asyncio.sleep(0)  # the greeting
        transport.writes.clear()
        for line in ("250-h", "250-AUTH LOGIN PLAIN", "250 HELP", "235 2.7.0 OK"):
            await session.push(line)
        session.connection_lost(None)
        await asyncio.sleep(0)
        return transport.writes

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


def test_a_login_logs_no_deprecation_warning(
    sb: Sandbox, tenant: SandboxTenant, caplog: pytest.LogCaptureFixture
) -> None:
    # aiosmtpd 1.4 logs one on every successful AUTH (Session.login_data),
    # which Python prints on stderr when nothing handles its logger: in the
    # demo, a line per PUT and verify.
    with smtplib.SMTP(sb.smtp_host, sb.smtp_ports["none"], LOCAL, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.login(tenant.smtp_username, tenant.smtp_password)[0] == 235
    assert not [r for r in caplog.records if "login_data" in r.getMessage()]
