"""Who may call the sandbox, and how often: API keys, OAuth, roles, rate limits."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import httpx
import pytest
from conftest import checked_client

from reconciler.sandbox import Sandbox, SandboxTenant

EMAIL_CONFIG = "/api/v1/transports/email-config"
UNAUTHORIZED = {"errors": [{"code": "AUTH-1", "title": "Unauthorized"}]}


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(tenants=30, seed=5) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def client(sb: Sandbox) -> Iterator[httpx.Client]:
    # Access tokens are not in the scanner: the token endpoint must return them.
    with checked_client(sb) as http:
        yield http


_next = itertools.count()


@pytest.fixture
def tenant(sb: Sandbox) -> SandboxTenant:
    """A tenant no other test of this module has touched (limits are per tenant)."""
    return sb.tenants[next(_next)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_config(client: httpx.Client, tenant: SandboxTenant, token: str) -> httpx.Response:
    return client.get(tenant.url + EMAIL_CONFIG, headers=bearer(token))


def token_via_json(client: httpx.Client, tenant: SandboxTenant, **extra: str) -> httpx.Response:
    body = {
        "grant_type": "client_credentials",
        "client_id": tenant.oauth_client_id,
        "client_secret": tenant.oauth_client_secret,
        **extra,
    }
    return client.post(tenant.url + "/oauth/token", json=body)


def test_oauth_token_from_a_json_body_opens_the_api(
    client: httpx.Client, tenant: SandboxTenant
) -> None:
    response = token_via_json(client, tenant)
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 21600
    assert token["scope"] == "user_default"
    assert re.match(r"^\d{4}-\d\d-\d\dT.*Z$", token["expires_at"])
    assert get_config(client, tenant, token["access_token"]).status_code == 200


def test_oauth_token_from_a_form_body_keeps_the_scope(
    client: httpx.Client, tenant: SandboxTenant
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": tenant.oauth_client_id,
        "client_secret": tenant.oauth_client_secret,
        "scope": "admin_classic",
    }
    response = client.post(tenant.url + "/oauth/token", data=form)
    assert response.status_code == 200
    assert response.json()["scope"] == "admin_classic"
    assert get_config(client, tenant, response.json()["access_token"]).status_code == 200


def test_oauth_client_may_authenticate_with_http_basic(
    client: httpx.Client, tenant: SandboxTenant
) -> None:
    response = client.post(
        tenant.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(tenant.oauth_client_id, tenant.oauth_client_secret),
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"client_secret": "wrong"}, 401, "OAUTH-1"),
        ({"client_id": "someone-else"}, 401, "OAUTH-1"),
        ({"grant_type": "password"}, 400, "OAUTH-2"),
        ({"client_id": ""}, 400, "OAUTH-3"),
    ],
    ids=["bad-secret", "unknown-client", "unsupported-grant", "no-client-id"],
)
def test_bad_token_requests_are_refused(
    client: httpx.Client, tenant: SandboxTenant, body: dict[str, str], status: int, code: str
) -> None:
    response = token_via_json(client, tenant, **body)
    assert response.status_code == status
    assert response.json()["errors"][0]["code"] == code
    assert "access_token" not in response.text


def test_a_token_is_refused_by_another_tenant(client: httpx.Client, sb: Sandbox) -> None:
    first, second = sb.tenants[25], sb.tenants[26]
    token = token_via_json(client, first).json()["access_token"]
    refused = get_config(client, second, token)
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    assert get_config(client, second, first.api_key).status_code == 401


def test_an_expired_token_is_refused(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.token_lifetime_s = 60
    try:
        issued = token_via_json(client, tenant).json()
    finally:
        sb.token_lifetime_s = 21600
    assert issued["expires_in"] == 60
    assert get_config(client, tenant, issued["access_token"]).status_code == 200
    sb.advance_time(61)
    expired = get_config(client, tenant, issued["access_token"])
    assert (expired.status_code, expired.json()) == (401, UNAUTHORIZED)


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer", "Bearer not-a-key"])
def test_missing_or_bad_credentials_are_401(
    client: httpx.Client, tenant: SandboxTenant, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client.get(tenant.url + EMAIL_CONFIG, headers=headers)
    assert (response.status_code, response.json()) == (401, UNAUTHORIZED)


def test_a_non_admin_is_403_on_every_email_config_endpoint(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    calls = [
        ("GET", "", None),
        ("PUT", "", sb.basic_auth_body(tenant.name)),
        ("PATCH", "", [{"op": "replace", "path": "/username", "value": "x"}]),
        ("DELETE", "", None),
        ("POST", "/actions/verify-connection", None),
        ("POST", "/actions/send-test-email", {"recipient": "a@example.com"}),
        ("POST", "/actions/validate", None),
    ]
    for method, suffix, body in calls:
        response = client.request(
            method,
            tenant.url + EMAIL_CONFIG + suffix,
            json=body,
            headers=bearer(tenant.nonadmin_api_key),
        )
        assert response.status_code == 403, (method, suffix)
        assert response.json() == {
            "errors": [{"code": "ROLECHECK-1", "title": "Must be a tenant admin"}]
        }
    assert sb.live_config(tenant.name) is None  # the refused PUT stored nothing


def test_tier2_limit_answers_429_with_retry_after(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.set_rate_limit(tier2=5, tenant=tenant.name)
    before = sb.stats.responses_429
    url = tenant.url + EMAIL_CONFIG + "/actions/validate"
    statuses = [client.post(url, headers=bearer(tenant.api_key)).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]

    limited = client.post(url, headers=bearer(tenant.api_key))
    assert limited.json() == {"errors": [{"code": "RATELIMIT-1", "title": "Too many requests"}]}
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert get_config(client, tenant, tenant.api_key).status_code == 200  # Tier 1 is separate
    assert sb.stats.responses_429 - before == 2

    sb.advance_time(61)  # the window slides past every counted request
    assert client.post(url, headers=bearer(tenant.api_key)).status_code == 200


def test_limits_count_per_credential(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.set_rate_limit(tier1=3, tenant=tenant.name)
    statuses = [get_config(client, tenant, tenant.api_key).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    token = token_via_json(client, tenant).json()["access_token"]
    assert get_config(client, tenant, token).status_code == 200


def test_the_token_endpoint_is_tier2_limited(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.set_rate_limit(tier2=2, tenant=tenant.name)
    statuses = [token_via_json(client, tenant).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_no_429_when_rate_limits_are_off(
    client: httpx.Client, sb: Sandbox, tenant: SandboxTenant
) -> None:
    sb.set_rate_limit(tier1=2, tenant=tenant.name)
    sb.rate_limits_enabled = False
    try:
        statuses = {get_config(client, tenant, tenant.api_key).status_code for _ in range(10)}
    finally:
        sb.rate_limits_enabled = True
    assert statuses == {200}
