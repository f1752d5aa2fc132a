"""What the sandbox does to check a configuration: real SMTP, real tokens.

PUT, verify-connection and send-test-email all end here. BasicAuth connects
with `aiosmtplib` to serverAddress:serverPort using the configured
securityType and logs in with username/emailPassword; Microsoft365 asks the
fake identity provider for a token (and, to send, logs in to the sandbox's
StartTLS listener with AUTH XOAUTH2, as Office 365 SMTP does).

The SMTP client runs on the sandbox's own event loop, beside the SMTP server
it talks to: no worker threads, so no hand-offs and no fight for the GIL
with the loop, which cost more than the logins themselves with `smtplib` in
threads on two cores (bench/NOTES.md, "Sandbox SMTP checks").

The sandbox never leaves the machine: a serverAddress that is not a loopback
address fails as a connection error without any network traffic (no DNS).
"""

from __future__ import annotations

import asyncio
import email.policy
import functools
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Literal

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPException,
    SMTPResponseException,
)

from reconciler.sandbox.identity import IdentityError, IdentityProvider
from reconciler.sandbox.state import StoredConfig
from reconciler.values import valueclass

Outcome = Literal["ok", "credentials", "connection", "incomplete", "rejected"]
# aiosmtplib would otherwise call socket.getfqdn() (a DNS lookup) for EHLO.
_CLIENT_HOSTNAME = "qlik-email-sandbox.localhost"


@valueclass
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


@valueclass
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
    # Where Microsoft 365 mail goes: the sandbox's own StartTLS listener.
    m365_smtp: tuple[str, int] = ("127.0.0.1", 0)
    timeout_s: float = 10.0
    # SMTP sessions open at once; more checks wait for a turn. Each one holds two
    # file descriptors (both ends are in this process), so a client with a
    # thousand requests in flight must not open two thousand of them.
    sessions: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(64))

    async def check(self, config: StoredConfig) -> ProbeResult:
        """Log in (BasicAuth) or get a token (Microsoft365); send nothing."""
        missing = config.missing_fields()
        if missing:
            return ProbeResult("incomplete", 0, "Incomplete configuration: missing " + missing)
        if config.provider == "Microsoft365":
            return self._token(config)[0]
        return await _smtp_session(self, config, None)

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
            return await _xoauth2_send(self, config, token, message)
        return await _smtp_session(self, config, message)

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


async def _smtp_session(
    prober: Prober, config: StoredConfig, message: EmailMessage | None
) -> ProbeResult:
    """Connect, secure, log in and (if given a message) send it."""
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

    async def log_in(client: SMTP) -> ProbeResult:
        try:
            await client.connect()
        except (OSError, SMTPException) as exc:
            return ProbeResult(
                "connection", 0, f"Could not connect to {host}:{port} ({security}): {_why(exc)}"
            )
        try:
            reply = await client.login(str(config.fields["username"]), config.secret or "")
        except SMTPAuthenticationError as exc:
            return ProbeResult("credentials", exc.code, _reply(exc.code, exc.message))
        except (OSError, SMTPException) as exc:
            return ProbeResult("connection", 0, f"SMTP login not possible: {exc}")
        if message is None:
            return ProbeResult("ok", reply.code, "Connection verified")
        return await _deliver(client, message)

    return await _session(prober, _client(host, port, security, prober), log_in)


async def _xoauth2_send(
    prober: Prober, config: StoredConfig, token: str, message: EmailMessage
) -> ProbeResult:
    host, port = prober.m365_smtp

    async def log_in(client: SMTP) -> ProbeResult:
        try:
            await client.connect()
        except (OSError, SMTPException) as exc:
            return ProbeResult(
                "connection", 0, f"Could not connect to Microsoft 365 SMTP: {_why(exc)}"
            )
        try:
            await client.auth_xoauth2(str(config.fields.get("emailAddress", "")), token)
        except SMTPAuthenticationError as exc:
            return ProbeResult("credentials", exc.code, _reply(exc.code, exc.message))
        except (OSError, SMTPException) as exc:
            return ProbeResult("connection", 0, f"SMTP login not possible: {exc}")
        return await _deliver(client, message)

    return await _session(prober, _client(host, port, "StartTLS", prober), log_in)


def _client(host: str, port: int, security: str, prober: Prober) -> SMTP:
    """An unconnected client. `connect()` reads the greeting and, for StartTLS,
    sends EHLO and STARTTLS; the EHLO after STARTTLS comes with the login."""
    return SMTP(
        hostname=host,
        port=port,
        local_hostname=_CLIENT_HOSTNAME,
        timeout=prober.timeout_s,
        use_tls=security == "SSL/TLS",
        # True, not None: a server that does not offer STARTTLS is a connection
        # error, as it was with smtplib, not a reason to log in in clear text.
        start_tls=security == "StartTLS",
        tls_context=prober.tls,
    )


async def _session(
    prober: Prober, client: SMTP, exchange: Callable[[SMTP], Awaitable[ProbeResult]]
) -> ProbeResult:
    """Run `exchange`, then say QUIT (as smtplib's `with` did) and hang up."""
    async with prober.sessions:
        try:
            result = await exchange(client)
        except BaseException:
            client.close()  # cancelled (the sandbox is stopping): no QUIT to wait for
            raise
        try:
            if client.is_connected:
                await client.quit()
        except (OSError, SMTPException):
            pass  # the outcome is decided; a server that hangs up first changes nothing
        finally:
            client.close()
    return result


async def _deliver(client: SMTP, message: EmailMessage) -> ProbeResult:
    recipient = str(message["To"])
    try:
        await client.mail(_address_of(str(message["From"])))
        await client.rcpt(recipient)
        # policy.SMTP: CRLF line ends, as the wire wants them.
        reply = await client.data(message.as_bytes(policy=email.policy.SMTP))
    except SMTPResponseException as exc:
        # MAIL not 250, RCPT not 250/251, or DATA refused.
        return ProbeResult(
            "rejected", exc.code, _reply(exc.code, exc.message), rejected=(recipient,)
        )
    except (OSError, SMTPException) as exc:
        return ProbeResult("connection", 0, f"Connection lost while sending: {exc}")
    return ProbeResult("ok", reply.code, "Email sent", accepted=(recipient,))


def _why(exc: BaseException) -> BaseException:
    """The cause of a failed connection, without aiosmtplib's "Error connecting
    to HOST on port PORT: " in front of it (the message says where already)."""
    cause = exc.__cause__
    if (
        isinstance(exc, SMTPConnectError)
        and isinstance(cause, OSError)
        and not isinstance(cause, SMTPException)
        and str(cause)
    ):
        return cause
    return exc


def _address_of(header: str) -> str:
    return header.rsplit("<", 1)[-1].rstrip(">").strip()


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {message}".strip()


@functools.lru_cache(maxsize=256)  # parsed once per address, not once per check
def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
