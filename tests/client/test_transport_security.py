"""Transport security: TLS is always verified, proxies are those of the
environment, credentials go only to the tenant's own URL (no redirects, no
hosts outside settings.allowedHosts), and a malicious configuration in a pull
request cannot make plan run commands or read files outside the repository
(see also tests/test_bad_input.py)."""

from __future__ import annotations

import asyncio
import http.server
import select
import socket
import socketserver
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from reconciler.client import ApiKeyCredentials, ApiSession, ClientOptions
from reconciler.client.transport import Routes
from reconciler.errors import ApiError
from reconciler.sandbox import Sandbox
from reconciler.secrets import Secret

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"


@pytest.fixture
def https_fleet(tmp_path):
    with Sandbox(tenants=2, https=True, seed=2) as sandbox:
        repo = sandbox.write_config(tmp_path / "config")
        ca = tmp_path / "sandbox-ca.pem"
        ca.write_text(sandbox.smtp_ca_pem)
        yield sandbox, repo, ca


def test_an_untrusted_certificate_is_refused(https_fleet, cli, monkeypatch):
    sandbox, repo, _ = https_fleet
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    result = cli("plan", str(repo))
    assert result.code == 1
    assert (
        "CERTIFICATE_VERIFY_FAILED" in result.stdout or "certificate verify failed" in result.stdout
    )
    assert sandbox.stats.requests == 0  # the handshake failed: no request was ever answered


def test_a_ca_bundle_from_ssl_cert_file_is_trusted(https_fleet, cli, monkeypatch):
    _, repo, ca = https_fleet
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    result = cli("plan", str(repo), "--detailed-exitcode")
    assert result.code == 2, result
    assert "Plan: 2 to create" in result.stdout


def test_there_is_no_switch_to_turn_tls_verification_off(cli):
    for command in ("plan", "apply", "drift"):
        text = cli(command, "--help").stdout.lower()
        assert "insecure" not in text and "verify-tls" not in text and "no-verify" not in text
    sources = "\n".join(p.read_text() for p in (PACKAGE / "client").glob("*.py"))
    assert "verify=False" not in sources and "CERT_NONE" not in sources


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []
    location = ""

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        if self.location:
            self.send_response(307)
            self.send_header("Location", self.location)
            self.end_headers()
        else:
            self.send_response(200)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(location: str = "") -> Iterator[tuple[str, list[dict[str, str]]]]:
    handler = type("Handler", (_Recorder,), {"seen": [], "location": location})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_do_not_follow_a_redirect(sandbox, repo, cli):
    with (
        serving() as (elsewhere, seen_elsewhere),
        serving(elsewhere + "/steal") as (redirector, seen),
    ):
        path = repo / "tenants" / "tenant-001.yaml"
        data = yaml.safe_load(path.read_text())
        data["url"] = f"{redirector}/t/tenant-001"
        path.write_text(yaml.safe_dump(data))
        result = cli("plan", str(repo))
    assert result.code == 1
    assert "redirect" in result.stdout.lower()
    headers = {name.lower(): value for name, value in seen[0].items()} if seen else {}
    assert headers.get("authorization", "").startswith("Bearer ")
    assert seen_elsewhere == []  # the key never reached the other host


def test_tenant_url_outside_allowed_hosts_is_refused_before_any_request(sandbox, repo, cli):
    path = repo / "tenants" / "tenant-002.yaml"
    data = yaml.safe_load(path.read_text())
    data["url"] = "https://collector.attacker.example/t/tenant-002"
    path.write_text(yaml.safe_dump(data))
    sandbox.reset_stats()
    result = cli("plan", str(repo))
    assert result.code == 1
    line = path.read_text().splitlines().index(f"url: {data['url']}") + 1
    expected = f"tenant-002.yaml:{line}:6: host collector.attacker.example is not an allowed"
    assert expected in result.stderr
    assert sandbox.stats.requests == 0


def test_allowed_hosts_from_the_environment_replace_the_config(sandbox, repo, cli, monkeypatch):
    root = repo / "qlik-email.yaml"
    data = yaml.safe_load(root.read_text())
    data["settings"] = {"allowedHosts": ["*.attacker.example", "127.0.0.1"]}
    root.write_text(yaml.safe_dump(data))
    path = repo / "tenants" / "tenant-002.yaml"
    tenant = yaml.safe_load(path.read_text())
    tenant["url"] = "https://collector.attacker.example/t/tenant-002"
    path.write_text(yaml.safe_dump(tenant))
    # The repository (a pull request) allows the host, but CI pins the list.
    monkeypatch.setenv("QLIK_EMAIL_ALLOWED_HOSTS", "*.qlikcloud.com")
    result = cli("validate", str(repo))
    assert result.code == 1
    assert (
        "collector.attacker.example is not an allowed tenant host (*.qlikcloud.com)"
        in result.stderr
    )
    monkeypatch.delenv("QLIK_EMAIL_ALLOWED_HOSTS")
    assert cli("validate", str(repo)).code == 0


def test_plan_resolves_only_api_credentials_and_runs_nothing(
    sandbox, repo, cli, monkeypatch, tmp_path
):
    from reconciler.secrets import SecretResolver

    resolved: list[str] = []
    original = SecretResolver.resolve

    def spy(self, ref):
        resolved.append(str(ref))
        value = original(self, ref)
        assert str(ref) != "${file:/etc/shadow}", "read a file outside the repository"
        return value

    monkeypatch.setattr(SecretResolver, "resolve", spy)
    marker = tmp_path / "ran"
    path = repo / "tenants" / "tenant-001.yaml"
    data = yaml.safe_load(path.read_text())
    data["email"]["password"] = f"${{cmd:touch {marker}}}"
    path.write_text(yaml.safe_dump(data))
    other = repo / "tenants" / "tenant-003.yaml"
    data = yaml.safe_load(other.read_text())
    data["email"]["password"] = "${file:/etc/shadow}"
    other.write_text(yaml.safe_dump(data))
    result = cli("plan", str(repo))
    assert result.code == 0, result
    assert resolved and all(ref.endswith(".apikey}") for ref in resolved)
    # drift learns the e-mail secrets it may, to scrub what servers echo: never
    # by running a command, never from a file outside the repository.
    resolved.clear()
    result = cli("drift", str(repo))
    assert result.code in (0, 2), result
    assert not marker.exists()
    email = sorted(ref for ref in resolved if not ref.endswith(".apikey}"))
    assert email == [
        "${file:.secrets/tenant-002.m365}",
        "${file:.secrets/tenant-004.smtp}",
        "${file:/etc/shadow}",  # asked for, and refused by the policy (outside)
    ]
    assert "${file:/etc/shadow}" not in (result.stdout + result.stderr)


# --- the client's own transport (aiohttp) ---------------------------------------------------


def read_first_tenant(sandbox: Sandbox, **options: Any) -> dict[str, Any]:
    """GET email-config of the sandbox's first tenant, as the CLI's client does."""
    tenant = sandbox.tenants[0]

    async def read() -> dict[str, Any]:
        async with ApiSession(ClientOptions(**options)) as session:
            credentials = ApiKeyCredentials(Secret(tenant.api_key))
            return await session.tenant(tenant.name, tenant.url, credentials).get_email_config()

    return asyncio.run(read())


def test_the_client_trusts_only_the_configured_ca_and_does_not_retry(https_fleet, monkeypatch):
    sandbox, _, ca = https_fleet
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ApiError) as caught:
        read_first_tenant(sandbox)
    message = str(caught.value)
    assert (
        "TLS certificate verification failed" in message and "certificate verify failed" in message
    )
    assert message.endswith("after 1 attempt")  # a certificate does not get better by retrying
    assert sandbox.stats.requests == 0
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    assert read_first_tenant(sandbox)["isValid"] is False  # not configured yet


class _Proxy(socketserver.BaseRequestHandler):
    """A forward proxy: CONNECT tunnels (https) and absolute-form requests (http)."""

    seen: list[str]

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            head += chunk
        first, rest = head.split(b"\r\n", 1)
        method, target, version = first.decode().split(" ")
        self.seen.append(f"{method} {target}")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = urllib.parse.urlsplit(target)
            upstream = socket.create_connection((url.hostname, url.port))
            origin = f"{method} {url.path} {version}\r\n".encode()
            upstream.sendall(origin + rest)
        with upstream:
            self._pipe(upstream)

    def _pipe(self, upstream: socket.socket) -> None:
        ends = [self.request, upstream]
        while True:
            for end in select.select(ends, [], [])[0]:
                data = end.recv(65536)
                if not data:
                    return
                (upstream if end is self.request else self.request).sendall(data)


@contextmanager
def forward_proxy() -> Iterator[tuple[str, list[str]]]:
    handler = type("Proxy", (_Proxy,), {"seen": []})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    finally:
        server.shutdown()
        server.server_close()  # joins the handlers, which end when the client closes
        thread.join()


@pytest.fixture
def proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for scheme in ("HTTP", "HTTPS", "ALL", "NO"):
        monkeypatch.delenv(f"{scheme}_PROXY", raising=False)
        monkeypatch.delenv(f"{scheme.lower()}_proxy", raising=False)
    return monkeypatch


def test_https_proxy_and_no_proxy_from_the_environment(https_fleet, proxy_environment):
    sandbox, _, ca = https_fleet
    proxy_environment.setenv("SSL_CERT_FILE", str(ca))
    port = urllib.parse.urlsplit(sandbox.base_url).port
    with forward_proxy() as (proxy, seen):
        proxy_environment.setenv("HTTPS_PROXY", proxy)
        read_first_tenant(sandbox)
        assert seen == [f"CONNECT 127.0.0.1:{port}"]  # TLS end to end, through the tunnel
        proxy_environment.setenv("NO_PROXY", "127.0.0.1")
        read_first_tenant(sandbox)
        assert len(seen) == 1  # direct
    assert sandbox.stats.requests == 2


def test_http_proxy_from_the_environment(sandbox, proxy_environment):
    with forward_proxy() as (proxy, seen):
        proxy_environment.setenv("HTTP_PROXY", proxy)
        read_first_tenant(sandbox)
        read_first_tenant(
            sandbox, transport=httpx.MockTransport(lambda r: httpx.Response(200, json={}))
        )
    tenant = sandbox.tenants[0]
    # an injected transport is used as it is, as httpx does
    assert seen == [f"GET {tenant.url}/api/v1/transports/email-config"]


ROUTED = [
    "https://example.com/x",
    "https://a.example.com/x",
    "https://badexample.com/x",
    "http://sub.test/x",
    "http://a.sub.test/x",
    "http://127.0.0.2:9000/x",
    "http://127.0.0.3/x",
    "http://10.127.0.0.2/x",
    "https://mylocalhost/x",
    "http://[::1]:8080/x",
    "https://LOCALHOST/x",
    "http://internal:8080/x",
    "http://internal:8081/x",
    "https://internal:8080/x",
    "https://z.any.test/x",
    "https://any.test/x",
    "http://tenant.eu.qlikcloud.com/x",
    "https://tenant.eu.qlikcloud.com/x",
]
# What NO_PROXY=example.com,.sub.test,127.0.0.2,::1,localhost,http://internal:8080
# becomes (`transport._direct_pattern`), and one of each other shape.
BYPASS = [
    "all://*example.com",
    "all://*.sub.test",
    "all://127.0.0.2",
    "all://[::1]",
    "all://localhost",
    "http://internal:8080",
    "all://*.any.test",
]


@pytest.mark.parametrize(
    "proxies",
    [
        {},
        {"https://": "p1"},
        {"http://": "p2", "all://": "p3"},
        {"https://": "p1", "all://": "p3"},
        {"all://": "p3", "https://tenant.eu.qlikcloud.com": "p4", "all://*qlikcloud.com": "p5"},
    ],
)
@pytest.mark.parametrize("bypass", [[], BYPASS])
def test_requests_go_through_the_transport_httpx_would_choose(proxies, bypass):
    """The session calls its transports itself (`transport.Routes`): for each
    URL, the transport is the one httpx's own client picks from the same mounts."""

    def answering(name: str) -> httpx.MockTransport:
        return httpx.MockTransport(lambda request: httpx.Response(200, text=name))

    direct = answering("direct")
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        pattern: answering(name) for pattern, name in proxies.items()
    }
    mounts.update(dict.fromkeys(bypass))

    async def chosen_by_httpx() -> list[str]:
        async with httpx.AsyncClient(transport=direct, mounts=mounts) as client:
            return [(await client.get(url)).text for url in ROUTED]

    async def chosen_by_routes() -> list[str]:
        routes = Routes(direct, mounts)
        request = [routes.transport_for(url) for url in ROUTED]
        return [
            (await t.handle_async_request(httpx.Request("GET", url))).text
            for t, url in zip(request, ROUTED, strict=True)
        ]

    expected = asyncio.run(chosen_by_httpx())
    assert asyncio.run(chosen_by_routes()) == expected
    assert set(proxies.values()) <= set(expected)  # each proxy is chosen for some URL


def test_a_url_httpx_cannot_parse_is_a_transport_error_when_a_proxy_is_set() -> None:
    """The routes parse a URL only to match a proxy's pattern; one that httpx
    refuses is refused as aiohttp's invalid URLs are (`translate`), not raised
    as httpx.InvalidURL, which no caller expects."""
    direct = httpx.MockTransport(lambda request: httpx.Response(200))
    routes = Routes(direct, {"https://": httpx.MockTransport(lambda request: httpx.Response(200))})
    with pytest.raises(httpx.UnsupportedProtocol, match="invalid URL"):
        routes.transport_for("https://\u00a1.example/api")
    assert Routes(direct).transport_for("https://\u00a1.example/api") is direct  # no proxy
