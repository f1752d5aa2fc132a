"""Qlik's own client against the sandbox: `@qlik/api` (npm), the generated
TypeScript client of the Qlik Cloud REST APIs, drives one tenant through every
e-mail configuration call (tests/node/qlik_api_client.mjs), and every answer
has the types its declarations give it. A user's own `@qlik/api` script works
against the sandbox the same way.

Needs Node.js and the npm packages of tests/node (`.ci/run` installs them):
missing, the test is skipped on a workstation and fails under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox import Sandbox
from reconciler.sandbox.api import PRODUCT_INFO

NODE_DIR = Path(__file__).parent.parent / "node"
SCRIPT = NODE_DIR / "qlik_api_client.mjs"
RECIPIENT = "ops@example.com"


def node_or_skip() -> str:
    """Node.js, with @qlik/api installed under tests/node."""
    node = shutil.which("node")
    installed = (NODE_DIR / "node_modules" / "@qlik" / "api" / "package.json").is_file()
    if node and installed:
        return node
    message = "Node.js and `npm ci --prefix tests/node` are needed"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; .ci/run installs them")
    pytest.skip(message)


def drive(node: str, sandbox: Sandbox, name: str) -> dict[str, Any]:
    """Run the script against tenant `name`; its JSON output."""
    tenant = sandbox.tenant(name)
    smtp = sandbox.basic_auth_body(name)["providerConfig"]
    given = {
        "host": tenant.url,
        "apiKey": tenant.api_key,
        "recipient": RECIPIENT,
        "smtp": {
            "host": smtp["serverAddress"],
            "port": smtp["serverPort"],
            "securityType": smtp["securityType"],
            "username": smtp["username"],
            "password": smtp["emailPassword"],
            "emailAddress": smtp["emailAddress"],
        },
    }
    done = subprocess.run(
        [node, str(SCRIPT)],
        env={"PATH": os.environ.get("PATH", ""), "QLIK_SANDBOX": json.dumps(given)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    result["notices"] = done.stdout.splitlines()[:-1]
    result["exit"] = done.returncode
    return result


def test_qlik_api_client_parses_every_answer_of_the_sandbox() -> None:
    node = node_or_skip()
    with Sandbox(tenants=2, seed=7) as sandbox:
        sandbox.patch_enabled = True  # the deprecated PATCH, which Qlik's client still has
        result = drive(node, sandbox, "tenant-001")
        log = sandbox.request_log
        received = sandbox.mailbox.for_recipient(RECIPIENT)
        left = sandbox.live_config("tenant-001")
    assert result["problems"] == [] and result["exit"] == 0, result
    # Beyond the declarations, only what the real API sends too (the tutorial's
    # examples in Qlik's documentation).
    assert result["extras"] == ["GetEmailConfig._id", "SmtpResult.accepted", "SmtpResult.rejected"]
    calls = {call["name"]: call for call in result["calls"]}
    statuses = [(call["name"], call["status"]) for call in result["calls"]]
    assert statuses == [
        ("get (none)", 200),
        ("put", 204),
        ("get", 200),
        ("validate", 200),
        ("verify", 200),
        ("test e-mail", 200),
        ("patch", 204),
        ("get (patched)", 200),
        ("delete", 204),
        ("get (deleted)", 200),
    ]
    config = calls["get"]["data"]
    assert config["serviceProvider"] == "BasicAuth" and config["passwordExists"] is True
    assert config["providerConfig"]["senderName"] == "Qlik's client"
    assert calls["validate"]["data"] == {"isValid": True, "errorCode": "OK"}
    assert calls["verify"]["data"]["success"] is True
    assert calls["test e-mail"]["data"]["success"] is True
    assert [m.subject for m in received] == ["From Qlik's client"]
    assert calls["get (deleted)"]["data"]["passwordExists"] is False and left is None
    # The client classified the tenant once: product-info was fetched a single time.
    fetched = [entry for entry in log if entry.path == PRODUCT_INFO]
    assert [(e.method, e.status) for e in fetched] == [("GET", 200)]
    assert all(entry.tenant == "tenant-001" for entry in log)
