"""The sandbox's SMTP server: three aiosmtpd listeners sharing one mailbox.

    none      plain SMTP; AUTH is offered without TLS (real servers rarely do,
              but Qlik's `securityType: none` needs somewhere to log in)
    StartTLS  plain SMTP that offers STARTTLS and offers AUTH only after it
    SSL/TLS   implicit TLS from the first byte

All three check AUTH PLAIN / AUTH LOGIN against a `CredentialRegistry`
(username -> password) and AUTH XOAUTH2 against the fake identity provider
(Microsoft 365 style). Mail is accepted only after a successful AUTH, and every
accepted message lands in the `Mailbox`. Recipients in the domain
`reject.example` are refused with 550, so tests can see a rejected recipient.

The listeners run on an event loop the caller owns (the sandbox shares its
HTTP loop): they only ever do a little I/O per session.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ssl
import threading
import weakref
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from reconciler.sandbox.certs import TlsMaterial
from reconciler.sandbox.identity import IdentityProvider
from reconciler.sandbox.mailbox import Mailbox, parse_message
from reconciler.sandbox.smtpsession import HooksOnlyDir, LeanSession, quiet_login_data

SECURITY_TYPES = ("none", "StartTLS", "SSL/TLS")
REJECTED_DOMAIN = "reject.example"
# Set explicitly: aiosmtpd would otherwise call socket.getfqdn(), a DNS lookup
# that can take seconds on a machine without a resolver.
SERVER_HOSTNAME = "smtp.sandbox.localhost"


class CredentialRegistry:
    """The SMTP accounts: username -> password."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._passwords: dict[str, str] = {}
        self._logins_left: dict[str, int] = {}

    def set(self, username: str, password: str) -> None:
        with self._lock:
            self._passwords[username] = password
            self._logins_left.pop(username, None)

    def expire_after(self, username: str, logins: int) -> None:
        """Accept `logins` more successful logins, then refuse the password, as
        when a mail administrator rotates it behind the tenant's back."""
        with self._lock:
            self._logins_left[username] = logins

    def remove(self, username: str) -> None:
        with self._lock:
            self._passwords.pop(username, None)

    def check(self, username: str, password: str) -> bool:
        with self._lock:
            expected = self._passwords.get(username)
            # Constant-time comparison, out of habit: this is a credential check.
            ok = expected is not None and hmac.compare_digest(expected.encode(), password.encode())
            left = self._logins_left.get(username)
            if ok and left is not None:
                if left <= 0:
                    return False
                self._logins_left[username] = left - 1
            return ok


class _Authenticator:
    """aiosmtpd's AUTH PLAIN / LOGIN callback, backed by the registry."""

    def __init__(self, registry: CredentialRegistry) -> None:
        self._registry = registry

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = data.login.decode("utf-8", "replace")
        password = data.password.decode("utf-8", "replace")
        if self._registry.check(login, password):
            return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)


class _Handler(HooksOnlyDir):
    """aiosmtpd hooks: require AUTH, refuse one domain, store messages, XOAUTH2."""

    def __init__(self, mailbox: Mailbox, identity: IdentityProvider, listener: str) -> None:
        self._mailbox = mailbox
        self._identity = identity
        self._listener = listener

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # Enforced here rather than with aiosmtpd's auth_required, which warns
        # on every connection when AUTH is also allowed without TLS.
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower().endswith("@" + REJECTED_DOMAIN):
            return "550 5.1.1 Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = parse_message(
            envelope.original_content or b"",
            envelope.mail_from or "",
            envelope.rcpt_tos,
            str(session.auth_data or ""),
            self._listener,
        )
        self._mailbox.add(message)
        return "250 2.0.0 OK: queued"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """SASL XOAUTH2: `user=<address>^Aauth=Bearer <token>^A^A`, base64-encoded."""
        if len(args) == 2:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Bad base64")
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            blob = answer
        fields = dict(
            part.split("=", 1)
            for part in blob.decode("utf-8", "replace").split("\x01")
            if "=" in part
        )
        token = fields.get("auth", "").removeprefix("Bearer ").strip()
        if self._identity.check_token(token) is None:
            return AuthResult(
                success=False, handled=False, message="535 5.7.3 Authentication unsuccessful"
            )
        return AuthResult(success=True, auth_data=fields.get("user", ""))


class SmtpServer:
    """The three listeners on one host, sharing a registry and a mailbox."""

    def __init__(
        self,
        *,
        registry: CredentialRegistry,
        mailbox: Mailbox,
        identity: IdentityProvider,
        tls: TlsMaterial,
        host: str = "127.0.0.1",
        idle_timeout_s: float = 30.0,
    ) -> None:
        self.registry = registry
        self.mailbox = mailbox
        self.host = host
        self.ports: dict[str, int] = {}
        self._identity = identity
        self._tls = tls
        self._idle_timeout_s = idle_timeout_s
        self._servers: list[asyncio.AbstractServer] = []
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    async def start(self, ports: dict[str, int] | None = None) -> dict[str, int]:
        """Bind the listeners (port 0 = ephemeral) on the running loop."""
        wanted = ports or {}
        loop = asyncio.get_running_loop()
        quiet_login_data()
        server_tls = self._tls.server_context()
        # No TLS 1.3 session tickets: every check is a new handshake anyway (the
        # sandbox's client does not resume sessions: with OpenSSL 3 resuming
        # cost more CPU than it saved), and making two tickets per handshake
        # is about a tenth of a StartTLS check's CPU.
        server_tls.num_tickets = 0
        for security in SECURITY_TYPES:
            factory = self._factory(security, loop, server_tls)
            implicit = server_tls if security == "SSL/TLS" else None
            server = await loop.create_server(
                factory, self.host, wanted.get(security, 0), ssl=implicit, backlog=256
            )
            self._servers.append(server)
            self.ports[security] = server.sockets[0].getsockname()[1]
        return dict(self.ports)

    def _factory(
        self, security: str, loop: asyncio.AbstractEventLoop, server_tls: ssl.SSLContext
    ) -> Callable[[], SMTP]:
        handler = _Handler(self.mailbox, self._identity, security)
        authenticator = _Authenticator(self.registry)

        def make() -> SMTP:
            session = LeanSession(
                handler,
                hostname=SERVER_HOSTNAME,
                ident="qlik-email sandbox ESMTP",
                # Only the StartTLS listener offers STARTTLS and insists on it
                # before AUTH; on the implicit-TLS listener aiosmtpd cannot see
                # the TLS layer, so AUTH must be allowed "without" it there.
                tls_context=server_tls if security == "StartTLS" else None,
                auth_require_tls=security == "StartTLS",
                authenticator=authenticator,
                timeout=self._idle_timeout_s,
                loop=loop,
            )
            self._sessions.add(session)
            return session

        return make

    def close(self) -> None:
        """Stop listening and drop the sessions still open."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
