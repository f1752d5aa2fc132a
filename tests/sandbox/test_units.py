"""The sandbox's pure parts, without servers: limits, faults, checks, state, schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.sandbox import state
from reconciler.sandbox.clock import Clock, iso_timestamp
from reconciler.sandbox.conformance import UNMATCHED, ConformanceError, OpenApiChecker
from reconciler.sandbox.faults import NO_FAULT, Faults
from reconciler.sandbox.identity import IdentityError, IdentityProvider
from reconciler.sandbox.inputcheck import check_patch, check_put, check_test_email
from reconciler.sandbox.ratelimit import RateLimiter

SPEC = Path(__file__).parents[1] / "data" / "openapi-transports-email-config.yaml"


def test_the_window_slides_and_refused_requests_do_not_count() -> None:
    clock = Clock()
    limiter = RateLimiter(clock, tier1=3, tier2=1)
    assert [limiter.hit("t", "key", "1") for _ in range(3)] == [None, None, None]
    assert limiter.hit("t", "key", "1") == 60
    clock.advance(30)
    assert limiter.hit("t", "key", "1") == 30
    assert limiter.hit("t", "other-key", "1") is None  # per credential
    assert limiter.hit("u", "key", "1") is None  # per tenant
    clock.advance(30)
    assert limiter.hit("t", "key", "1") is None


def test_limits_per_tenant_and_switched_off() -> None:
    limiter = RateLimiter(Clock())
    limiter.set_limits(tier2=1, tenant="small")
    assert (limiter.limit("small", "2"), limiter.limit("small", "1")) == (1, 1000)
    assert limiter.limit("other", "2") == 100
    limiter.hit("small", "k", "2")
    assert limiter.hit("small", "k", "2") is not None
    limiter.enabled = False
    assert limiter.hit("small", "k", "2") is None
    with pytest.raises(ValueError):
        limiter.set_limits(tier1=0)


def test_fault_draws_repeat_with_the_same_seed() -> None:
    def draws(seed: int) -> list[object]:
        faults = Faults(seed)
        faults.set(errors={500: 0.2, 503: 0.2}, resets=0.1)
        return [faults.decide("t", token_route=False) for _ in range(200)]

    first = draws(1)
    assert first == draws(1) and first != draws(2)
    statuses = {d.status for d in first}  # type: ignore[attr-defined]
    assert statuses == {None, 500, 503}
    assert any(d.reset for d in first)  # type: ignore[attr-defined]


def test_fault_settings_are_checked_and_scoped() -> None:
    faults = Faults(0)
    assert faults.decide("t", token_route=False) is NO_FAULT
    with pytest.raises(ValueError):
        faults.set(errors={500: 0.7}, resets=0.5)
    with pytest.raises(ValueError):
        faults.set(errors={200: 0.1})
    assert faults.set(stall_s=5).stalls == 1.0
    faults.set(token_errors={401: 1.0}, tenant="t")
    assert faults.decide("t", token_route=True).status == 401
    assert faults.decide("t", token_route=False).status is None
    faults.clear("t")
    assert faults.decide("t", token_route=False).stall_s == 5


def test_put_checks_name_fields_but_never_values() -> None:
    problems = check_put(
        {
            "serviceProvider": "BasicAuth",
            "providerConfig": {
                "serverAddress": "",
                "serverPort": 70000,
                "securityType": "TLS",
                "username": "u",
                "emailPassword": "hunter2-secret",
                "emailAddress": "no-at-sign",
                "clientId": "x",
            },
        }
    )
    assert problems == [
        "unknown field for BasicAuth: clientId",
        "serverAddress must not be empty",
        "serverPort must be an integer between 1 and 65535",
        "securityType must be one of none, StartTLS, SSL/TLS",
        "emailAddress is not an email address",
    ]
    assert "hunter2" not in json.dumps(problems)


def test_a_valid_put_becomes_a_stored_config() -> None:
    config = check_put(
        {
            "serviceProvider": "Microsoft365",
            "providerConfig": {
                "clientId": "c",
                "clientSecret": "s",
                "providerTenantId": "p",
                "emailAddress": "a@b.example",
            },
        }
    )
    assert config == state.StoredConfig(
        "Microsoft365",
        {"clientId": "c", "providerTenantId": "p", "emailAddress": "a@b.example"},
        "s",
    )


def test_patch_operations_become_legacy_updates() -> None:
    updates = check_patch(
        [
            {"op": "replace", "path": "/serverPort", "value": "2465"},
            {"op": "remove", "path": "/username"},
            {"op": "add", "path": "/emailPassword", "value": "pw"},
        ]
    )
    assert updates == {"serverPort": 2465, "username": None, "emailPassword": "pw"}
    assert check_patch([{"op": "move", "path": "/senderName", "value": "x"}]) == [
        "operation 0: op must be one of replace, add, remove",
        "operation 0: path must be one of /serverAddress, /serverPort, /securityType, "
        "/username, /emailAddress, /emailPassword",
    ]
    assert check_patch({}) == ["request body is not a non-empty JSON array of patch operations"]


def test_test_email_defaults_and_problems() -> None:
    mail = check_test_email({"recipient": "x@example.com"})
    assert not isinstance(mail, list) and mail.subject == "Qlik Cloud Test Email"
    assert check_test_email({"recipient": "nobody", "subject": 3}) == [
        "recipient is not an email address",
        "subject is not a string",
    ]


def test_health_follows_check_outcomes() -> None:
    tenant = state.TenantState(tenant_id="t")
    state.set_legacy_fields(
        tenant,
        {
            "serverAddress": "h",
            "serverPort": 25,
            "securityType": "none",
            "username": "u",
            "emailAddress": "a@b",
        },
        1.0,
    )
    assert (tenant.is_valid, tenant.error_code) == (False, "INCOMPLETE_CONFIG")
    state.set_legacy_fields(tenant, {"emailPassword": "pw"}, 2.0)
    assert (tenant.is_valid, tenant.error_code) == (True, "OK")
    state.record(tenant, "credentials", "535", 3.0)
    state.record(tenant, "credentials", "535", 3.0, keep_validity=True)
    assert (tenant.is_valid, tenant.error_code, tenant.auth_failures) == (
        False,
        "INVALID_CREDENTIALS",
        2,
    )
    state.record(tenant, "connection", "refused", 4.0)
    assert (tenant.error_code, tenant.auth_failures) == ("PROVIDER_ERROR", 2)
    state.record(tenant, "ok", "OK", 5.0)
    shown = state.view(tenant)
    assert (shown["isValid"], shown["authFailures"], shown["status"]["statusCode"]) == (True, 0, 0)
    assert "pw" not in json.dumps(shown) and "serviceProvider" not in shown


def test_timestamps_have_milliseconds_and_z() -> None:
    assert iso_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert iso_timestamp(1656582960.954) == "2022-06-30T09:56:00.954Z"


def test_identity_errors_are_entra_ids() -> None:
    identity = IdentityProvider(Clock())
    identity.register("tenant", "client", "secret")
    outcomes = [
        identity.request_token("nope", "client", "secret"),
        identity.request_token("tenant", "nope", "secret"),
        identity.request_token("tenant", "client", "nope"),
    ]
    assert [o.code for o in outcomes if isinstance(o, IdentityError)] == [
        "AADSTS90002",
        "AADSTS700016",
        "AADSTS7000215",
    ]
    token = identity.request_token("tenant", "client", "secret")
    assert not isinstance(token, IdentityError)
    assert identity.check_token(token.value) == token and identity.check_token("x") is None


def test_the_checker_reads_loose_one_of_as_any_of() -> None:
    checker = OpenApiChecker(SPEC)
    flat = {"serviceProvider": "Microsoft365", "providerConfig": {"clientId": "c"}}
    assert checker.check(
        "GET", "/t/x/api/v1/transports/email-config", 200, json.dumps(flat).encode()
    )
    with pytest.raises(ConformanceError, match="isValid"):
        checker.check("GET", "/api/v1/transports/email-config", 200, b'{"isValid": "yes"}')
    with pytest.raises(ConformanceError, match="204"):
        checker.check("DELETE", "/api/v1/transports/email-config", 204, b"{}")


def test_the_checker_falls_back_to_the_error_shape() -> None:
    checker = OpenApiChecker(SPEC)
    errors = b'{"errors": [{"code": "RATELIMIT-1", "title": "Too many requests"}]}'
    assert checker.check("POST", "/t/x/oauth/token", 429, errors) == "getToken"
    assert checker.check("GET", "/t/x/nothing", 404, errors) == UNMATCHED
    with pytest.raises(ConformanceError):
        checker.check("POST", "/oauth/token", 503, b'{"errors": [{"code": 1}]}')
