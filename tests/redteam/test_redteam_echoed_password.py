"""A tenant server that stores the SMTP password and echoes it in the free text of
its answers (errorCode, status.statusReason, the verify-connection message). plan
and drift resolve no e-mail secret to send it, so they could not scrub it: the
real CLI must either learn the secret to scrub it (an `${env:...}` reference) or
withhold the text, in every format, and never print the password."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

PASSWORD = "Stored-Pw+2024/echo"
API_KEY = "k" * 40


class EchoServer:
    """One tenant on 127.0.0.1 whose answers carry the stored password."""

    def __init__(self) -> None:
        def answer(handler: BaseHTTPRequestHandler) -> None:
            length = int(handler.headers.get("Content-Length") or 0)
            handler.rfile.read(length)
            if handler.command == "GET":
                body = {
                    "serviceProvider": "BasicAuth",
                    "providerConfig": {
                        "serverAddress": "127.0.0.1",
                        "serverPort": 2525,
                        "securityType": "none",
                        "username": "mailer",
                        "emailAddress": "qlik@example.com",
                    },
                    "isValid": False,
                    "errorCode": PASSWORD,
                    "passwordExists": True,
                    "authFailures": 3,
                    "status": {"statusCode": 535, "statusReason": f"login refused for {PASSWORD}"},
                }
            else:
                body = {
                    "success": False,
                    "connectionFailed": False,
                    "message": f"535 5.7.8 password {PASSWORD} rejected",
                    "smtpResponseCode": 535,
                }
            data = json.dumps(body).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)

        class Handler(BaseHTTPRequestHandler):
            do_GET = do_POST = answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.stop()


def write_repo(root: Path, url: str, password_ref: str) -> Path:
    (root / "tenants").mkdir(parents=True)
    (root / "qlik-email.yaml").write_text(
        yaml.safe_dump({"settings": {"allowedHosts": ["127.0.0.1"], "timeout": 5}})
    )
    tenant = {
        "name": "echo",
        "url": url,
        "auth": {"apiKey": "${env:ECHO_API_KEY}"},
        "email": {
            "provider": "BasicAuth",
            "serverAddress": "127.0.0.1",
            "serverPort": 2525,
            "securityType": "none",
            "username": "mailer",
            "password": password_ref,
            "emailAddress": "qlik@example.com",
        },
    }
    (root / "tenants" / "echo.yaml").write_text(yaml.safe_dump(tenant))
    return root


@pytest.mark.parametrize(
    ("password_ref", "learnt"),
    [
        ("${env:ECHO_SMTP_PASSWORD}", True),  # learnt to scrub it
        ("${env:ECHO_UNSET}", False),  # not available where drift runs
        ("${cmd:printf Stored-Pw}", False),  # drift never runs a command
    ],
)
def test_drift_never_prints_a_password_the_server_echoes(
    echo, cli, tmp_path, monkeypatch, password_ref, learnt
):
    monkeypatch.setenv("ECHO_API_KEY", API_KEY)
    monkeypatch.setenv("ECHO_SMTP_PASSWORD", PASSWORD)
    monkeypatch.delenv("ECHO_UNSET", raising=False)
    repo = write_repo(tmp_path / "config", echo.url, password_ref)
    report, markdown = tmp_path / "drift.json", tmp_path / "drift.md"
    printed = []
    for fmt in ("text", "json", "markdown"):
        result = cli(
            "--debug", "drift", str(repo), "--verify", "--format", fmt,
            "--report", str(report), "--markdown", str(markdown),
        )  # fmt: skip
        assert result.code == 2, result
        printed += [result.stdout, result.stderr, report.read_text(), markdown.read_text()]
    everything = "\n".join(printed)
    assert PASSWORD not in everything
    assert "Stored-Pw" not in everything
    withheld = "server text withheld" in everything
    assert withheld is not learnt
    document = json.loads(report.read_text())
    (tenant,) = document["tenants"]
    # The structured facts are always there.
    assert tenant["health"]["authFailures"] == 3
    assert any("authentication failure" in p["message"] for p in tenant["problems"])
    if learnt:
        assert "login refused for" in everything  # the text itself, scrubbed
    else:
        assert "SMTP response code 535" in everything
        assert tenant["health"]["errorCode"] == "withheld"
