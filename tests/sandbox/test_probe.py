"""The sandbox's SMTP checks (`Prober`) against its SMTP server, on one event loop.

test_api.py covers the outcomes through the HTTP API; here are the ones that
need a server other than the sandbox's own (one that never answers, one with
another CA's certificate) or many checks at once.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from reconciler.sandbox.certs import TlsMaterial, generate
from reconciler.sandbox.clock import Clock
from reconciler.sandbox.identity import IdentityProvider
from reconciler.sandbox.mailbox import Mailbox
from reconciler.sandbox.probe import MailRequest, Prober, ProbeResult
from reconciler.sandbox.smtp import SECURITY_TYPES, CredentialRegistry, SmtpServer
from reconciler.sandbox.state import StoredConfig

T = TypeVar("T")
USER, PASSWORD = "tenant-001", "s3cret-password"
TLS = generate()


def config(port: int, security: str, host: str = "127.0.0.1", **fields: Any) -> StoredConfig:
    values: dict[str, Any] = {
        "serverAddress": host,
        "serverPort": port,
        "securityType": security,
        "username": USER,
        "emailAddress": "admin@tenant-001.example",
        "senderName": "Tenant 1",
    }
    secret = fields.pop("emailPassword", PASSWORD)
    values.update(fields)
    return StoredConfig("BasicAuth", values, secret)


def with_server(
    scenario: Callable[[Prober, dict[str, int], Mailbox], Awaitable[T]],
    *,
    server_tls: TlsMaterial = TLS,
    timeout_s: float = 5.0,
) -> T:
    """Run `scenario` with a server (certificate from `server_tls`) and a prober
    that trusts only TLS's CA, both on one loop, as in the sandbox."""

    async def run() -> T:
        registry = CredentialRegistry()
        registry.set(USER, PASSWORD)
        identity = IdentityProvider(Clock())
        mailbox = Mailbox()
        server = SmtpServer(registry=registry, mailbox=mailbox, identity=identity, tls=server_tls)
        ports = await server.start()
        prober = Prober(identity, TLS.client_context(), timeout_s=timeout_s)
        try:
            return await scenario(prober, ports, mailbox)
        finally:
            server.close()

    return asyncio.run(run())


@pytest.mark.parametrize("security", SECURITY_TYPES)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_right_password_logs_in(security: str, host: str) -> None:
    async def scenario(prober: Prober, ports: dict[str, int], _: Mailbox) -> ProbeResult:
        return await prober.check(config(ports[security], security, host))

    assert with_server(scenario) == ProbeResult("ok", 235, "Connection verified")


@pytest.mark.parametrize("security", SECURITY_TYPES)
def test_a_wrong_password_is_a_credentials_failure(security: str) -> None:
    async def scenario(prober: Prober, ports: dict[str, int], _: Mailbox) -> ProbeResult:
        return await prober.check(config(ports[security], security, emailPassword="wrong"))

    result = with_server(scenario)
    assert (result.outcome, result.code) == ("credentials", 535)
    assert result.message.startswith("535 5.7.8")


@pytest.mark.parametrize(
    ("listener", "security", "words"),
    [
        ("none", "StartTLS", "STARTTLS extension not supported"),
        ("StartTLS", "none", "SMTP login not possible: The SMTP AUTH extension is not supported"),
        ("none", "SSL/TLS", "Could not connect"),
    ],
    ids=["starttls-on-plain", "plain-on-starttls", "implicit-tls-on-plain"],
)
def test_the_wrong_security_type_is_a_connection_failure(
    listener: str, security: str, words: str
) -> None:
    async def scenario(prober: Prober, ports: dict[str, int], _: Mailbox) -> ProbeResult:
        return await prober.check(config(ports[listener], security))

    result = with_server(scenario)
    assert (result.outcome, result.code) == ("connection", 0)
    assert words in result.message


@pytest.mark.parametrize("security", ["StartTLS", "SSL/TLS"])
def test_a_certificate_from_another_ca_is_refused(security: str) -> None:
    async def scenario(prober: Prober, ports: dict[str, int], _: Mailbox) -> ProbeResult:
        return await prober.check(config(ports[security], security))

    result = with_server(scenario, server_tls=generate())
    assert result.outcome == "connection"
    assert "CERTIFICATE_VERIFY_FAILED" in result.message


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections (the kernel does), never says a word
        port = silent.getsockname()[1]

        async def scenario(prober: Prober, _: dict[str, int], __: Mailbox) -> ProbeResult:
            return await prober.check(config(port, "none"))

        result = with_server(scenario, timeout_s=0.3)
    assert result.outcome == "connection"
    assert "Timed out" in result.message


@pytest.mark.parametrize(
    ("host", "port", "words"),
    [
        ("smtp.example.com", 25, "the sandbox reaches only loopback SMTP servers"),
        ("192.0.2.1", 25, "the sandbox reaches only loopback SMTP servers"),
        ("127.0.0.1", "25x", "serverPort is not a number"),
    ],
)
def test_what_the_sandbox_does_not_connect_to(host: str, port: Any, words: str) -> None:
    async def scenario(prober: Prober, _: dict[str, int], __: Mailbox) -> ProbeResult:
        return await prober.check(config(port, "none", host))

    result = with_server(scenario)
    assert (result.outcome, result.code) == ("connection", 0)
    assert words in result.message


def test_a_closed_port_is_a_connection_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario(prober: Prober, _: dict[str, int], __: Mailbox) -> ProbeResult:
        return await prober.check(config(port, "none"))

    result = with_server(scenario)
    assert result.outcome == "connection" and "Could not connect" in result.message


def test_many_checks_at_once_all_log_in() -> None:
    async def scenario(prober: Prober, ports: dict[str, int], _: Mailbox) -> list[ProbeResult]:
        checks = [
            prober.check(config(ports[security], security))
            for _ in range(100)
            for security in SECURITY_TYPES
        ]
        return await asyncio.gather(*checks)

    results = with_server(scenario)
    assert len(results) == 300 and all(r.ok and r.code == 235 for r in results)


def test_a_sent_message_is_delivered_and_a_refused_recipient_rejected() -> None:
    async def scenario(
        prober: Prober, ports: dict[str, int], mailbox: Mailbox
    ) -> tuple[ProbeResult, ProbeResult, int]:
        stored = config(ports["StartTLS"], "StartTLS")
        sent = await prober.send(stored, MailRequest("ops@example.com", "Hi", "Body\n.\nend"))
        refused = await prober.send(stored, MailRequest("x@reject.example", "Hi", "Body"))
        (message,) = mailbox.for_recipient("ops@example.com")
        # A line of one dot (the end-of-data mark) survives the transfer.
        assert message.body.splitlines() == ["Body", ".", "end"]
        return sent, refused, len(mailbox)

    sent, refused, delivered = with_server(scenario)
    assert (sent.outcome, sent.code, sent.accepted) == ("ok", 250, ("ops@example.com",))
    assert (refused.outcome, refused.code, refused.rejected) == (
        "rejected",
        550,
        ("x@reject.example",),
    )
    assert delivered == 1


def test_checks_beyond_the_session_limit_wait_for_a_turn() -> None:
    async def run() -> tuple[list[ProbeResult], int]:
        registry = CredentialRegistry()
        registry.set(USER, PASSWORD)
        identity = IdentityProvider(Clock())
        server = SmtpServer(registry=registry, mailbox=Mailbox(), identity=identity, tls=TLS)
        ports = await server.start()
        prober = Prober(identity, TLS.client_context(), sessions=asyncio.Semaphore(3))
        most = 0

        async def watch() -> None:
            nonlocal most
            while True:
                open_now = sum(s.transport is not None for s in server._sessions)
                most = max(most, open_now)
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        try:
            checks = [prober.check(config(ports["none"], "none")) for _ in range(30)]
            return await asyncio.gather(*checks), most
        finally:
            watcher.cancel()
            server.close()

    results, most = asyncio.run(run())
    assert all(r.ok for r in results)
    assert 1 <= most <= 3
