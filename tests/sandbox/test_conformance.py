"""Conformance: sandbox responses against the published OpenAPI document.

Every sandbox test module sends its responses through the same checker (an
httpx response hook, `shared_checker`), which validates each one as it
arrives. This module walks every operation through its documented statuses,
so that it covers the whole document even when run alone, and ends with the
test that the checker saw enough responses and every operationId.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import SPEC, checked_client

from reconciler.sandbox import Sandbox, SandboxTenant
from reconciler.sandbox.conformance import shared_checker

EMAIL_CONFIG = "/api/v1/transports/email-config"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(tenants=3, seed=13, patch_enabled=True) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def client(sb: Sandbox) -> Iterator[httpx.Client]:
    with checked_client(sb) as http:
        yield http


def statuses(client: httpx.Client, calls: list[tuple[str, str, dict[str, Any]]]) -> list[int]:
    return [client.request(method, url, **kwargs).status_code for method, url, kwargs in calls]


def test_every_operation_answers_its_documented_statuses(client: httpx.Client, sb: Sandbox) -> None:
    tenant: SandboxTenant = sb.tenants[0]
    url = tenant.url + EMAIL_CONFIG
    admin = {"headers": {"Authorization": f"Bearer {tenant.api_key}"}}
    user = {"headers": {"Authorization": f"Bearer {tenant.nonadmin_api_key}"}}
    token = {"grant_type": "client_credentials", "client_id": tenant.oauth_client_id}
    good_put = sb.basic_auth_body(tenant.name, "SSL/TLS")
    patch = [{"op": "replace", "path": "/username", "value": tenant.smtp_username}]
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", tenant.url + "/oauth/token", {"data": {**token, "client_secret": "x"}}),
        ("POST", tenant.url + "/oauth/token", {"data": {"grant_type": "password"}}),
        (
            "POST",
            tenant.url + "/oauth/token",
            {"data": {**token, "client_secret": tenant.oauth_client_secret}},
        ),
        ("GET", url, admin),
        ("GET", url, user),
        ("GET", url, {}),
        ("POST", url + "/actions/validate", admin),
        ("POST", url + "/actions/verify-connection", admin),
        (
            "POST",
            url + "/actions/send-test-email",
            {**admin, "json": {"recipient": "a@example.com"}},
        ),
        ("DELETE", url, admin),
        ("PUT", url, {**admin, "json": {"serviceProvider": "BasicAuth"}}),
        ("PUT", url, {**user, "json": good_put}),
        ("PUT", url, {**admin, "json": sb.basic_auth_body(tenant.name, emailPassword="nope")}),
        ("PUT", url, {**admin, "json": good_put}),
        ("GET", url, admin),
        ("PATCH", url, {**admin, "json": patch}),
        ("PATCH", url, {**admin, "json": [{"op": "replace", "path": "/nope", "value": "x"}]}),
        ("PATCH", url, {**user, "json": patch}),
        ("POST", url + "/actions/validate", admin),
        ("POST", url + "/actions/verify-connection", admin),
        (
            "POST",
            url + "/actions/send-test-email",
            {**admin, "json": {"recipient": "b@example.com"}},
        ),
        ("POST", url + "/actions/send-test-email", {**admin, "json": {"recipient": 1}}),
        ("POST", url + "/actions/verify-connection", user),
        ("DELETE", url, user),
        ("DELETE", url, admin),
        ("DELETE", url, admin),
    ]
    assert statuses(client, calls) == [
        401, 400, 200,
        200, 403, 401,
        200, 404, 404, 404,
        400, 403, 400, 204, 200,
        204, 400, 403,
        200, 200, 200, 400, 403,
        403, 204, 404,
    ]  # fmt: skip


def test_a_microsoft365_config_and_a_disabled_patch_conform(
    client: httpx.Client, sb: Sandbox
) -> None:
    tenant = sb.tenants[1]
    admin = {"Authorization": f"Bearer {tenant.api_key}"}
    url = tenant.url + EMAIL_CONFIG
    assert client.put(url, json=sb.m365_body(tenant.name), headers=admin).status_code == 204
    assert client.get(url, headers=admin).status_code == 200
    assert client.post(url + "/actions/verify-connection", headers=admin).status_code == 200
    sb.patch_enabled = False
    try:
        assert client.patch(url, json=[], headers=admin).status_code == 410
    finally:
        sb.patch_enabled = True


def test_every_response_so_far_conformed_and_every_operation_was_seen() -> None:
    checker = shared_checker(SPEC)
    # The hooks raise on the first non-conforming response, so reaching this
    # point means every response counted here validated.
    assert checker.validated >= 30
    missing = checker.operation_ids - set(checker.counts)
    assert not missing, f"operations never exercised: {sorted(missing)}"
