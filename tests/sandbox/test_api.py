"""The sandbox's email-config API over real HTTP, with real SMTP behind it.

Every response goes through the OpenAPI checker and the secret scanner (httpx
response hooks), so each test here is also a conformance and leak test.
"""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import checked_client

from reconciler.sandbox import Sandbox
from reconciler.sandbox.conformance import SecretScanner

EMAIL_CONFIG = "/api/v1/transports/email-config"
WRONG_PASSWORD = "wrong-password-9f8e7d"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SECURITY_TYPES = ("none", "StartTLS", "SSL/TLS")


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(tenants=60, seed=11, smtp_timeout_s=5) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def scanner(sb: Sandbox) -> SecretScanner:
    scanner = SecretScanner(value for t in sb.tenants for value in t.secrets())
    scanner.add(WRONG_PASSWORD)
    return scanner


@pytest.fixture(scope="module")
def client(sb: Sandbox, scanner: SecretScanner) -> Iterator[httpx.Client]:
    with checked_client(sb, scanner) as http:
        yield http


_names = itertools.count(1)


@pytest.fixture
def name(sb: Sandbox) -> str:
    """A tenant no other test of this module has touched."""
    return sb.tenants[next(_names)].name


class Api:
    """Calls one tenant's endpoints as its admin."""

    def __init__(self, sb: Sandbox, client: httpx.Client, name: str) -> None:
        tenant = sb.tenant(name)
        self.url = tenant.url + EMAIL_CONFIG
        self.headers = {"Authorization": f"Bearer {tenant.api_key}"}
        self.client = client

    def get(self) -> dict[str, Any]:
        response = self.client.get(self.url, headers=self.headers)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    def put(self, body: Any) -> httpx.Response:
        return self.client.put(self.url, json=body, headers=self.headers)

    def call(self, method: str, suffix: str = "", **kwargs: Any) -> httpx.Response:
        return self.client.request(method, self.url + suffix, headers=self.headers, **kwargs)

    def action(self, action: str, body: Any = None) -> httpx.Response:
        return self.call("POST", "/actions/" + action, json=body)


@pytest.fixture
def api(sb: Sandbox, client: httpx.Client, name: str) -> Api:
    return Api(sb, client, name)


def titles(response: httpx.Response) -> list[str]:
    return [error["title"] for error in response.json()["errors"]]


def codes(response: httpx.Response) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


def test_get_without_config_is_exactly_invalid_and_passwordless(api: Api) -> None:
    assert api.get() == {"isValid": False, "passwordExists": False}


@pytest.mark.parametrize("security", SECURITY_TYPES)
def test_put_basic_auth_connects_and_stores_the_config(
    sb: Sandbox, api: Api, name: str, security: str
) -> None:
    assert api.put(sb.basic_auth_body(name, security)).status_code == 204

    live = api.get()
    tenant = sb.tenant(name)
    expected = {
        "serverAddress": "127.0.0.1",
        "serverPort": sb.smtp_ports[security],
        "securityType": security,
        "username": tenant.smtp_username,
        "emailAddress": tenant.email_address,
    }
    assert live["serviceProvider"] == "BasicAuth"
    assert live["providerConfig"] == {**expected, "senderName": tenant.sender_name}
    assert {k: live[k] for k in expected} == expected
    assert live["passwordExists"] is True
    assert (live["isValid"], live["errorCode"], live["authFailures"]) == (True, "OK", 0)
    assert live["status"] == {"statusCode": 0, "statusReason": "OK"}
    assert ISO_MS.match(live["modificationTime"]) and ISO_MS.match(live["lastUpdated"])
    assert re.fullmatch(r"[0-9a-f]{24}", live["_id"]) and live["tenantId"]
    assert "emailPassword" not in live and "emailPassword" not in live["providerConfig"]


@pytest.mark.parametrize("security", SECURITY_TYPES)
def test_put_with_wrong_password_is_refused_and_keeps_the_old_config(
    sb: Sandbox, api: Api, name: str, security: str
) -> None:
    assert api.put(sb.basic_auth_body(name, security)).status_code == 204
    before = api.get()
    stored_before = sb.live_config(name)

    for attempt in (1, 2):
        bad = sb.basic_auth_body(
            name, security, emailPassword=WRONG_PASSWORD, senderName="Should Not Stick"
        )
        response = api.put(bad)
        assert response.status_code == 400
        assert codes(response) == ["INPUTCHECK-2"]
        assert titles(response)[0].startswith("SMTP authentication failed: 535")
        live = api.get()
        assert live["authFailures"] == attempt
        assert live["errorCode"] == "INVALID_CREDENTIALS"

    assert live["providerConfig"] == before["providerConfig"]
    assert live["modificationTime"] == before["modificationTime"]
    assert live["isValid"] is True  # the stored (old) configuration was not the one refused
    assert sb.live_config(name) == stored_before
    assert sb.health(name)["authFailures"] == 2


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"serverPort": "closed"}, "Could not connect"),
        ({"serverAddress": "smtp.company.com"}, "loopback"),
        ({"securityType": "StartTLS", "serverPort": "none"}, "STARTTLS"),
    ],
    ids=["refused", "not-loopback", "starttls-on-plain-listener"],
)
def test_put_that_cannot_connect_is_a_provider_error(
    sb: Sandbox, api: Api, name: str, overrides: dict[str, Any], words: str
) -> None:
    assert api.put(sb.basic_auth_body(name)).status_code == 204
    ports = {"closed": _closed_port(), "none": sb.smtp_ports["none"]}
    resolved = {k: ports.get(v, v) if k == "serverPort" else v for k, v in overrides.items()}

    response = api.put(sb.basic_auth_body(name, **resolved))

    assert response.status_code == 400
    assert codes(response) == ["INPUTCHECK-3"]
    assert titles(response)[0].startswith("SMTP connection failed:")
    assert words in titles(response)[0]
    live = api.get()
    assert (live["errorCode"], live["authFailures"]) == ("PROVIDER_ERROR", 0)
    assert live["serverPort"] == sb.smtp_ports["StartTLS"]


@pytest.mark.parametrize(
    ("body", "title"),
    [
        (
            {"serviceProvider": "BasicAuth", "providerConfig": {"serverAddress": 42}},
            "serverAddress is not a string",
        ),
        (
            {"serviceProvider": "Gmail", "providerConfig": {}},
            "serviceProvider must be one of BasicAuth, Microsoft365",
        ),
        ({"serviceProvider": "BasicAuth"}, "providerConfig is required"),
        ({"providerConfig": {}}, "serviceProvider is required"),
        ([1, 2], "request body is not a JSON object"),
        ({"serviceProvider": "BasicAuth", "providerConfig": {}, "x": 1}, "unknown field: x"),
    ],
    ids=["not-a-string", "unknown-provider", "no-config", "no-provider", "array", "extra"],
)
def test_put_body_problems_are_inputcheck_1(api: Api, body: Any, title: str) -> None:
    response = api.put(body)
    assert response.status_code == 400
    assert set(codes(response)) == {"INPUTCHECK-1"}
    assert title in titles(response)
    assert api.get() == {"isValid": False, "passwordExists": False}


def test_put_names_every_missing_and_mistyped_field(sb: Sandbox, api: Api, name: str) -> None:
    body = sb.basic_auth_body(name, serverPort="587")
    del body["providerConfig"]["emailPassword"]
    assert set(titles(api.put(body))) == {"emailPassword is required", "serverPort is not a number"}
    response = api.client.put(api.url, content=b"{not json", headers=api.headers)
    assert titles(response) == ["request body is not valid JSON"]


def test_microsoft365_put_with_the_right_triple_stores_it(sb: Sandbox, api: Api, name: str) -> None:
    assert api.put(sb.m365_body(name)).status_code == 204
    tenant = sb.tenant(name)
    live = api.get()
    assert live["serviceProvider"] == "Microsoft365"
    assert live["providerConfig"] == {
        "clientId": tenant.m365_client_id,
        "emailAddress": tenant.email_address,
        "providerTenantId": tenant.m365_provider_tenant_id,
    }
    assert "serverAddress" not in live and "clientSecret" not in str(live)
    assert (live["passwordExists"], live["isValid"], live["errorCode"]) == (True, True, "OK")


@pytest.mark.parametrize(
    ("field", "code", "aadsts", "error_code"),
    [
        ("clientSecret", "INPUTCHECK-2", "AADSTS7000215", "INVALID_CREDENTIALS"),
        ("clientId", "INPUTCHECK-2", "AADSTS700016", "INVALID_CREDENTIALS"),
        ("providerTenantId", "INPUTCHECK-3", "AADSTS90002", "PROVIDER_ERROR"),
    ],
)
def test_microsoft365_put_with_a_wrong_triple_is_refused(
    sb: Sandbox, api: Api, name: str, field: str, code: str, aadsts: str, error_code: str
) -> None:
    assert api.put(sb.m365_body(name)).status_code == 204
    wrong = "00000000-0000-0000-0000-000000000000" if field != "clientSecret" else "nope"
    response = api.put(sb.m365_body(name, **{field: wrong}))
    assert response.status_code == 400
    assert codes(response) == [code]
    assert aadsts in titles(response)[0]
    live = api.get()
    assert live["errorCode"] == error_code
    assert live["providerConfig"][field if field != "clientSecret" else "clientId"] != wrong


def test_delete_twice_is_204_then_404(sb: Sandbox, api: Api, name: str) -> None:
    assert api.put(sb.basic_auth_body(name)).status_code == 204
    assert api.call("DELETE").status_code == 204
    second = api.call("DELETE")
    assert second.status_code == 404
    assert second.json() == {
        "errors": [{"code": "DELETE-1", "title": "No email config for tenant"}]
    }
    assert api.get() == {"isValid": False, "passwordExists": False}


def test_patch_is_gone_by_default(api: Api) -> None:
    response = api.call("PATCH", json=[{"op": "replace", "path": "/username", "value": "x"}])
    assert response.status_code == 410
    assert codes(response) == ["DEPRECATED-1"]
    assert titles(response) == ["PATCH /transports/email-config was sunset in 2026-11; use PUT"]
    assert response.headers["Sunset"] == "Sun, 01 Nov 2026 00:00:00 GMT"
    assert response.headers["Deprecation"].startswith("@")


def test_enabled_patch_makes_a_legacy_config(sb: Sandbox, api: Api, name: str) -> None:
    tenant = sb.tenant(name)
    operations = [
        ("/serverAddress", "127.0.0.1"),
        ("/serverPort", sb.smtp_ports["SSL/TLS"]),  # a number, as in the tutorial
        ("/securityType", "SSL/TLS"),
        ("/username", tenant.smtp_username),
        ("/emailAddress", tenant.email_address),
        ("/emailPassword", tenant.smtp_password),
    ]
    body = [{"op": "replace", "path": path, "value": value} for path, value in operations]
    sb.patch_enabled = True
    try:
        assert api.call("PATCH", json=body).status_code == 204
    finally:
        sb.patch_enabled = False

    live = api.get()
    assert "serviceProvider" not in live and "providerConfig" not in live
    assert live["serverPort"] == sb.smtp_ports["SSL/TLS"]
    assert (live["username"], live["securityType"]) == (tenant.smtp_username, "SSL/TLS")
    assert (live["passwordExists"], live["isValid"], live["errorCode"]) == (True, True, "OK")
    assert api.action("verify-connection").json()["success"] is True


def test_seeded_incomplete_legacy_config_cannot_connect(sb: Sandbox, api: Api, name: str) -> None:
    sb.seed_legacy(name, {"serverAddress": "127.0.0.1", "serverPort": 25, "username": "old"})
    live = api.get()
    assert "serviceProvider" not in live and "providerConfig" not in live
    assert (live["serverAddress"], live["serverPort"], live["username"]) == ("127.0.0.1", 25, "old")
    assert (live["passwordExists"], live["errorCode"]) == (False, "INCOMPLETE_CONFIG")
    verify = api.action("verify-connection").json()
    assert verify["success"] is False and "emailPassword" in verify["message"]


def test_validate_reports_without_connecting(sb: Sandbox, api: Api, name: str) -> None:
    assert api.action("validate").json() == {"isValid": False, "errorCode": "CONFIG_NOT_SET"}
    assert api.put(sb.basic_auth_body(name)).status_code == 204
    sb.break_password(name)  # validate does not connect, so it cannot notice
    assert api.action("validate").json() == {"isValid": True, "errorCode": "OK"}


def test_verify_connection_follows_the_stored_credentials(sb: Sandbox, api: Api, name: str) -> None:
    assert api.put(sb.basic_auth_body(name, "SSL/TLS")).status_code == 204
    assert api.action("verify-connection").json() == {
        "success": True,
        "connectionFailed": False,
        "message": "Connection verified",
        "smtpResponseCode": 235,
    }

    sb.break_password(name)
    failed = api.action("verify-connection").json()
    assert (failed["success"], failed["connectionFailed"], failed["smtpResponseCode"]) == (
        False,
        False,
        535,
    )
    live = api.get()
    assert (live["isValid"], live["errorCode"], live["authFailures"]) == (
        False,
        "INVALID_CREDENTIALS",
        1,
    )

    sb.edit(name, emailPassword=sb.tenant(name).smtp_password)
    assert api.action("verify-connection").json()["success"] is True
    live = api.get()
    assert (live["isValid"], live["errorCode"], live["authFailures"]) == (True, "OK", 0)


def test_actions_without_config_are_404(api: Api) -> None:
    verify = api.action("verify-connection")
    send = api.action("send-test-email", {"recipient": "a@example.com"})
    assert (verify.status_code, codes(verify)) == (404, ["VERIFYCONNECTION-1"])
    assert (send.status_code, codes(send)) == (404, ["SENDTESTEMAIL-1"])


@pytest.mark.parametrize("security", SECURITY_TYPES)
def test_send_test_email_delivers_to_the_mailbox(
    sb: Sandbox, api: Api, name: str, security: str
) -> None:
    assert api.put(sb.basic_auth_body(name, security)).status_code == 204
    recipient = f"admin+{name}@example.com"
    response = api.action(
        "send-test-email",
        {"recipient": recipient, "subject": "Qlik Cloud Test Email", "body": "Hello from Qlik"},
    )
    assert response.json() == {
        "connectionFailed": False,
        "message": "Email sent",
        "smtpResponseCode": 250,
        "accepted": [recipient],
        "rejected": [],
        "success": True,
    }
    (message,) = sb.mailbox.for_recipient(recipient)
    tenant = sb.tenant(name)
    assert message.subject == "Qlik Cloud Test Email"
    assert message.to_header == recipient
    assert message.from_header == f"{tenant.sender_name} <{tenant.email_address}>"
    assert message.envelope_from == tenant.email_address
    assert (message.body, message.listener, message.login) == ("Hello from Qlik", security, name)


def test_send_test_email_to_a_refused_recipient(sb: Sandbox, api: Api, name: str) -> None:
    assert api.put(sb.basic_auth_body(name)).status_code == 204
    result = api.action("send-test-email", {"recipient": "nobody@reject.example"}).json()
    assert (result["success"], result["smtpResponseCode"]) == (False, 550)
    assert (result["accepted"], result["rejected"]) == ([], ["nobody@reject.example"])
    assert api.get()["isValid"] is True  # a refused recipient is not a broken config


def test_send_test_email_needs_a_recipient(sb: Sandbox, api: Api, name: str) -> None:
    assert api.put(sb.basic_auth_body(name)).status_code == 204
    response = api.action("send-test-email", {"subject": "no recipient"})
    assert (response.status_code, titles(response)) == (400, ["recipient is required"])


def test_send_test_email_with_microsoft365_uses_xoauth2(sb: Sandbox, api: Api, name: str) -> None:
    assert api.put(sb.m365_body(name)).status_code == 204
    recipient = f"m365+{name}@example.com"
    assert api.action("send-test-email", {"recipient": recipient}).json()["success"] is True
    (message,) = sb.mailbox.for_recipient(recipient)
    assert (message.login, message.listener) == (sb.tenant(name).email_address, "StartTLS")


def test_unknown_tenants_paths_and_methods(sb: Sandbox, client: httpx.Client, api: Api) -> None:
    unknown_tenant = client.get(f"{sb.base_url}/t/nobody{EMAIL_CONFIG}")
    unknown_path = client.get(api.url.replace(EMAIL_CONFIG, "/api/v1/users"), headers=api.headers)
    outside = client.get(sb.base_url + "/")
    wrong_method = api.call("POST")
    assert [r.status_code for r in (unknown_tenant, unknown_path, outside, wrong_method)] == [
        404,
        404,
        404,
        405,
    ]
    assert codes(unknown_tenant) == ["TENANT-1"] and codes(unknown_path) == ["NOTFOUND-1"]
    assert wrong_method.headers["Allow"] == "GET, PUT, PATCH, DELETE"


def test_no_response_carried_a_secret(scanner: SecretScanner) -> None:
    # Every response of this module went through the scanner hook, which
    # raises on a leak; here we only make sure it really looked.
    assert scanner.scanned >= 60
    assert len(scanner.secrets) > 5 * 60
