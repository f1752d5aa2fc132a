"""What the sandbox does to check a configuration: real SMTP, real tokens.

PUT, verify-connection and send-test-email all end here. BasicAuth connects
with `smtplib` to serverAddress:serverPort using the configured securityType
and logs in with username/emailPassword; Microsoft365 asks the fake identity
provider for a token (and, to send, logs in to the sandbox's StartTLS listener
with AUTH XOAUTH2, as Office 365 SMTP does).

`smtplib` blocks, so every SMTP exchange runs in a worker thread: the event
loop that serves GETs never waits for a mail server.

The sandbox never leaves the machine: a serverAddress that is not a loopback
address fails as a connection error without any network traffic (no DNS).
"""

from __future__ import annotations

import asyncio
import email.policy
import ipaddress
import smtplib
import ssl
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Literal

from reconciler.sandbox.identity import IdentityError, IdentityProvider
from reconciler.sandbox.state import StoredConfig

Outcome = Literal["ok", "credentials", "connection", "incomplete", "rejected"]
# smtplib would otherwise call socket.getfqdn() (a DNS lookup) for EHLO.
_CLIENT_HOSTNAME = "qlik-email-sandbox.localhost"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one check or send, in the terms the API reports.

    `code` is the SMTP reply code that decided the outcome (0 when no SMTP
    reply did, e.g. a refused connection or a Microsoft 365 token request).
    """

    outcome: Outcome
    code: int
    message: str
    accepted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True, slots=True)
class MailRequest:
    """The message send-test-email asks for."""

    recipient: str
    subject: str
    body: str


@dataclass(slots=True)
class Prober:
    """Runs checks for the API handlers; shared by every tenant."""

    identity: IdentityProvider
    tls: ssl.SSLContext
    executor: Executor
    # Where Microsoft 365 mail goes: the sandbox's own StartTLS listener.
    m365_smtp: tuple[str, int] = ("127.0.0.1", 0)
    timeout_s: float = 10.0

    async def check(self, config: StoredConfig) -> ProbeResult:
        """Log in (BasicAuth) or get a token (Microsoft365); send nothing."""
        missing = config.missing_fields()
        if missing:
            return ProbeResult("incomplete", 0, "Incomplete configuration: missing " + missing)
        if config.provider == "Microsoft365":
            return self._token(config)[0]
        return await self._in_thread(lambda: _smtp_session(self, config, None))

    async def send(self, config: StoredConfig, mail: MailRequest) -> ProbeResult:
        """Deliver `mail` with the configuration's credentials."""
        missing = config.missing_fields()
        if missing:
            return ProbeResult("incomplete", 0, "Incomplete configuration: missing " + missing)
        message = _compose(config, mail)
        if config.provider == "Microsoft365":
            result, token = self._token(config)
            if token is None:
                return result
            return await self._in_thread(lambda: _xoauth2_send(self, config, token, message))
        return await self._in_thread(lambda: _smtp_session(self, config, message))

    def _token(self, config: StoredConfig) -> tuple[ProbeResult, str | None]:
        answer = self.identity.request_token(
            str(config.fields.get("providerTenantId", "")),
            str(config.fields.get("clientId", "")),
            config.secret or "",
        )
        if isinstance(answer, IdentityError):
            kind: Outcome = "credentials" if answer.kind == "credentials" else "connection"
            return ProbeResult(kind, 0, str(answer)), None
        return ProbeResult("ok", 0, "Authentication token acquired"), answer.value

    async def _in_thread(self, work: Callable[[], ProbeResult]) -> ProbeResult:
        return await asyncio.get_running_loop().run_in_executor(self.executor, work)


def _compose(config: StoredConfig, mail: MailRequest) -> EmailMessage:
    address = str(config.fields.get("emailAddress", ""))
    message = EmailMessage()
    message["From"] = formataddr((str(config.fields.get("senderName", "")), address))
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="sandbox.localhost")
    message.set_content(mail.body)
    return message


def _smtp_session(
    prober: Prober, config: StoredConfig, message: EmailMessage | None
) -> ProbeResult:
    """Connect, secure, log in and (if given a message) send it. Runs in a thread."""
    host = str(config.fields["serverAddress"])
    security = str(config.fields["securityType"])
    try:
        # Seeded legacy configurations are not type-checked: the port may be anything.
        port = int(config.fields["serverPort"])
    except ValueError:
        return ProbeResult("connection", 0, "Could not connect: serverPort is not a number")
    if not _is_loopback(host):
        return ProbeResult(
            "connection",
            0,
            f"Could not connect to {host}:{port}: the sandbox reaches only loopback SMTP servers",
        )
    try:
        client = _connect(host, port, security, prober.tls, prober.timeout_s)
    except (OSError, smtplib.SMTPException) as exc:
        return ProbeResult(
            "connection", 0, f"Could not connect to {host}:{port} ({security}): {exc}"
        )
    with client:
        try:
            code, _ = client.login(str(config.fields["username"]), config.secret or "")
        except smtplib.SMTPAuthenticationError as exc:
            return ProbeResult("credentials", exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error))
        except (OSError, smtplib.SMTPException) as exc:
            return ProbeResult("connection", 0, f"SMTP login not possible: {exc}")
        if message is None:
            return ProbeResult("ok", code, "Connection verified")
        return _deliver(client, message)


def _xoauth2_send(
    prober: Prober, config: StoredConfig, token: str, message: EmailMessage
) -> ProbeResult:
    host, port = prober.m365_smtp
    user = str(config.fields.get("emailAddress", ""))
    blob = f"user={user}\x01auth=Bearer {token}\x01\x01"
    try:
        client = _connect(host, port, "StartTLS", prober.tls, prober.timeout_s)
    except (OSError, smtplib.SMTPException) as exc:
        return ProbeResult("connection", 0, f"Could not connect to Microsoft 365 SMTP: {exc}")
    with client:
        try:
            client.auth("XOAUTH2", lambda challenge=None: blob, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as exc:
            return ProbeResult("credentials", exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error))
        return _deliver(client, message)


def _connect(
    host: str, port: int, security: str, tls: ssl.SSLContext, timeout: float
) -> smtplib.SMTP:
    client: smtplib.SMTP
    if security == "SSL/TLS":
        client = smtplib.SMTP_SSL(
            host, port, local_hostname=_CLIENT_HOSTNAME, timeout=timeout, context=tls
        )
    else:
        client = smtplib.SMTP(host, port, local_hostname=_CLIENT_HOSTNAME, timeout=timeout)
    try:
        client.ehlo()
        if security == "StartTLS":
            client.starttls(context=tls)
            client.ehlo()
    except BaseException:
        client.close()
        raise
    return client


def _deliver(client: smtplib.SMTP, message: EmailMessage) -> ProbeResult:
    recipient = str(message["To"])
    try:
        code, reply = client.mail(_address_of(str(message["From"])))
        if code != 250:
            return ProbeResult("rejected", code, _reply(code, reply), rejected=(recipient,))
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            return ProbeResult("rejected", code, _reply(code, reply), rejected=(recipient,))
        # policy.SMTP: CRLF line ends, which smtplib does not add to bytes.
        code, reply = client.data(message.as_bytes(policy=email.policy.SMTP))
    except smtplib.SMTPResponseException as exc:
        return ProbeResult(
            "rejected", exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error), rejected=(recipient,)
        )
    except (OSError, smtplib.SMTPException) as exc:
        return ProbeResult("connection", 0, f"Connection lost while sending: {exc}")
    return ProbeResult("ok", code, "Email sent", accepted=(recipient,))


def _address_of(header: str) -> str:
    return header.rsplit("<", 1)[-1].rstrip(">").strip()


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {message}".strip()


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
