"""The Transports API client, against httpx.MockTransport handlers; its transport
(httpx over aiohttp) against small servers of our own on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import gc
import gzip
import importlib.abc
import json
import logging
import socket
import ssl
import sys
import threading
import time
import types
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import aiohttp
import httpx
import jsonschema
import pytest
import yaml

from reconciler.client import (
    ApiKeyCredentials,
    ApiSession,
    ClientOptions,
    OAuthCredentials,
    SmtpResult,
    TenantClient,
    build_put_body,
    tls,
)
from reconciler.client.failures import MAX_DETAIL, describe_transport_error, is_retryable
from reconciler.client.reply import parse_json
from reconciler.client.transport import Transport, translate
from reconciler.errors import ApiError, AuthError, NotAdminError, RequestError
from reconciler.model import DesiredEmail, Provider
from reconciler.sandbox.hostile import gzipped_zeros
from reconciler.secrets import REDACTED, Secret

OPENAPI = Path(__file__).parents[1] / "data" / "openapi-transports-email-config.yaml"
BASE = "https://acme.example.com"
CONFIG_PATH = "/api/v1/transports/email-config"
NO_CONFIG = {"isValid": False, "passwordExists": False}
API_KEY = "api-key-0123456789"
PASSWORD = 'smtp-"pa$$"-w0rd'
CLIENT_SECRET = "oauth-client-secret-xyz"
T = TypeVar("T")
Handler: TypeAlias = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)

BASIC = DesiredEmail.of(
    Provider.BASIC_AUTH,
    {
        "serverAddress": "email-smtp.eu-west-2.amazonaws.com",
        "serverPort": 465,
        "securityType": "SSL/TLS",
        "username": "AKIAEXAMPLE",
        "emailAddress": "qlik@acme.example",
        "senderName": "Acme Analytics",
    },
)
M365 = DesiredEmail.of(
    Provider.MICROSOFT365,
    {
        "clientId": "12345678-1234-1234-1234-123456789012",
        "providerTenantId": "87654321-4321-4321-4321-210987654321",
        "emailAddress": "qlik@acme.example",
    },
)


class FakeTime:
    """A monotonic clock that only moves when the client sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make_session(handler: Handler, fake: FakeTime | None = None, **options: Any) -> ApiSession:
    fake = fake or FakeTime()
    return ApiSession(
        ClientOptions(
            transport=httpx.MockTransport(handler), sleep=fake.sleep, clock=fake.clock, **options
        )
    )


def api_key_tenant(session: ApiSession, base: str = BASE, name: str = "acme") -> TenantClient:
    return session.tenant(name, base, ApiKeyCredentials(Secret(API_KEY)))


def oauth_tenant(session: ApiSession, base: str = BASE, name: str = "acme") -> TenantClient:
    credentials = OAuthCredentials("client-1", Secret(CLIENT_SECRET), scope="admin_classic")
    return session.tenant(name, base, credentials)


def run(session: ApiSession, work: Callable[[ApiSession], Awaitable[T]]) -> T:
    async def main() -> T:
        async with session:
            return await work(session)

    return asyncio.run(main())


def errors(status: int, code: str, title: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, json={"errors": [{"code": code, "title": title}]}, headers=headers
    )


def replies(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with `responses` in turn (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = responses[min(len(seen), len(responses)) - 1]
        if isinstance(reply, Exception):
            raise reply
        if not reply.is_stream_consumed:  # a streamed body: it is read once
            return reply
        # A fresh response each time: the client reads a body off its stream, once.
        return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)

    return handler, seen


class FakeTenant:
    """A tenant with an OAuth token endpoint; API calls need a token it issued."""

    def __init__(self, expires_in: int = 3600, refuse_all: bool = False) -> None:
        self.expires_in = expires_in
        self.refuse_all = refuse_all
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.token_requests: list[dict[str, Any]] = []
        self.api_requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            self.token_requests.append(json.loads(request.content))
            await asyncio.sleep(0)  # let concurrent callers pile up behind this fetch
            token = f"token-{len(self.issued) + 1}"
            self.issued.append(token)
            self.valid.add(token)
            body = {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}
            return httpx.Response(200, json=body)
        self.api_requests.append(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.refuse_all or token not in self.valid:
            return errors(401, "AUTH-1", "Unauthorized")
        return httpx.Response(200, json=NO_CONFIG)


# --- headers and URLs ---------------------------------------------------------------------


def test_api_key_is_sent_as_bearer_header() -> None:
    handler, seen = replies(httpx.Response(200, json=NO_CONFIG))
    live = run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())
    assert live == NO_CONFIG
    assert seen[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert str(seen[0].url) == BASE + CONFIG_PATH


def test_a_response_is_freed_without_the_cycle_collector() -> None:
    # httpx's Response and its stream refer to each other: the client breaks the
    # cycle once the body is read, so that thousands of reads leave nothing for
    # the cycle collector to walk (bench/NOTES.md, "Garbage collector").
    session = make_session(lambda request: httpx.Response(200, json=NO_CONFIG))
    gc.collect()
    gc.disable()
    try:
        run(
            session,
            lambda s: asyncio.gather(*(api_key_tenant(s).get_email_config() for _ in "abc")),
        )
        alive = [o for o in gc.get_objects() if isinstance(o, httpx.Response)]
    finally:
        gc.enable()
    assert alive == []


def test_user_agent_header_is_sent() -> None:
    handler, seen = replies(httpx.Response(200, json=NO_CONFIG))
    run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())
    assert seen[0].headers["user-agent"].startswith("qlik-email/")


def test_requests_carry_the_clients_headers_and_timeouts_with_their_own() -> None:
    """Requests go to the transport without `AsyncClient.send`: what build_request
    would have merged in is there all the same."""
    handler, seen = replies(httpx.Response(200, json=NO_CONFIG), httpx.Response(204))

    async def work(session: ApiSession) -> None:
        await api_key_tenant(session).get_email_config()
        await api_key_tenant(session).put_email_config(BASIC, Secret("p"))

    run(make_session(handler, timeout_s=7.0), work)
    get, put = seen
    for request in (get, put):
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.headers["accept"] == "application/json"
        assert request.headers["user-agent"].startswith("qlik-email/")
        assert "gzip" in request.headers["accept-encoding"]
        assert request.extensions["timeout"] == {
            "connect": 7.0,
            "read": None,
            "write": None,
            "pool": None,
        }
    assert "content-type" not in get.headers
    assert put.headers["content-type"] == "application/json"
    assert json.loads(put.content) == build_put_body(BASIC, Secret("p"))


def test_a_token_request_carries_the_clients_headers() -> None:
    """A request with no header of its own (the OAuth token's) gets the client's."""
    tokens: list[httpx.Request] = []
    fake = FakeTenant()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            tokens.append(request)
        return await fake(request)

    run(make_session(handler), lambda s: oauth_tenant(s).get_email_config())
    (token,) = tokens
    assert "authorization" not in token.headers
    assert token.headers["accept"] == "application/json"
    assert token.headers["user-agent"].startswith("qlik-email/")
    assert token.headers["content-type"] == "application/json"


def test_base_url_with_a_path_prefixes_api_and_token_requests() -> None:
    fake = FakeTenant()
    base = "http://127.0.0.1:8080/t/acme/"
    run(make_session(fake), lambda s: oauth_tenant(s, base).get_email_config())
    assert fake.api_requests[0].url.path == "/t/acme" + CONFIG_PATH
    assert fake.token_requests == [
        {
            "grant_type": "client_credentials",
            "client_id": "client-1",
            "client_secret": CLIENT_SECRET,
            "scope": "admin_classic",
        }
    ]


def test_redirect_is_an_error_and_is_not_followed() -> None:
    location = "https://elsewhere.example.net/steal?token=x"
    handler, seen = replies(httpx.Response(302, headers={"location": location}))
    with pytest.raises(ApiError) as caught:
        run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())
    assert caught.value.status == 302
    assert "redirected (302) to https://elsewhere.example.net/steal:" in str(caught.value)
    assert "token=x" not in str(caught.value)
    assert [r.url.host for r in seen] == ["acme.example.com"]


# --- OAuth --------------------------------------------------------------------------------


def test_oauth_token_is_fetched_once_for_many_concurrent_calls() -> None:
    fake = FakeTenant()
    session = make_session(fake)

    async def work(s: ApiSession) -> None:
        tenant = oauth_tenant(s)
        await asyncio.gather(*(tenant.get_email_config() for _ in range(50)))
        await oauth_tenant(s, name="acme-again").get_email_config()  # same tenant, same token

    run(session, work)
    assert len(fake.token_requests) == 1
    assert session.stats.token_fetches == 1
    assert len(fake.api_requests) == 51
    assert {r.headers["authorization"] for r in fake.api_requests} == {"Bearer token-1"}


def test_oauth_token_is_refreshed_near_expiry() -> None:
    fake, time = FakeTenant(expires_in=3600), FakeTime()

    async def work(s: ApiSession) -> None:
        tenant = oauth_tenant(s)
        await tenant.get_email_config()
        time.now += 3500  # 100 s left: still good
        await tenant.get_email_config()
        time.now += 50  # 50 s left: inside the 60 s margin
        await tenant.get_email_config()

    run(make_session(fake, time), work)
    assert fake.issued == ["token-1", "token-2"]
    used = [r.headers["authorization"] for r in fake.api_requests]
    assert used == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_oauth_token_is_refreshed_once_after_a_401() -> None:
    fake = FakeTenant()

    async def work(s: ApiSession) -> dict[str, Any]:
        tenant = oauth_tenant(s)
        await tenant.get_email_config()
        fake.valid.clear()  # the tenant revokes the token
        return await tenant.get_email_config()

    session = make_session(fake)
    assert run(session, work) == NO_CONFIG
    assert fake.issued == ["token-1", "token-2"]
    assert session.stats.retries == 0  # a refresh is not a retry


def test_api_401_after_token_refresh_is_auth_error() -> None:
    fake = FakeTenant(refuse_all=True)
    with pytest.raises(AuthError) as caught:
        run(make_session(fake), lambda s: oauth_tenant(s).get_email_config())
    assert "refused by acme (401 AUTH-1)" in str(caught.value)
    assert len(fake.token_requests) == 2
    assert len(fake.api_requests) == 2


def test_token_endpoint_401_is_auth_error_shared_by_concurrent_callers() -> None:
    body = {"error": "invalid_client", "error_description": f"bad secret {CLIENT_SECRET}"}
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        await asyncio.sleep(0)  # let the other callers queue behind this fetch
        return httpx.Response(401, json=body)

    async def work(s: ApiSession) -> list[BaseException | dict[str, Any]]:
        tenant = oauth_tenant(s)
        calls = (tenant.get_email_config() for _ in range(20))
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = run(make_session(handler), work)
    assert all(isinstance(o, AuthError) for o in outcomes)
    message = str(outcomes[0])
    assert message.startswith("OAuth client credentials refused by acme (401 invalid_client)")
    assert CLIENT_SECRET not in message and REDACTED in message
    assert [r.url.path for r in seen] == ["/oauth/token"]  # one fetch, not retried, shared


def test_api_key_401_is_auth_error() -> None:
    handler, seen = replies(errors(401, "AUTH-1", "Invalid API key"))
    with pytest.raises(AuthError, match="credentials were refused by acme"):
        run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())
    assert len(seen) == 1


# --- error mapping ------------------------------------------------------------------------


def test_rolecheck_403_is_not_admin_error_naming_the_tenant() -> None:
    handler, seen = replies(errors(403, "ROLECHECK-1", "Must be a tenant admin"))
    with pytest.raises(NotAdminError) as caught:
        run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())
    assert str(caught.value) == "the credentials are not a tenant admin on acme (403 ROLECHECK-1)"
    assert (caught.value.tenant, caught.value.status, caught.value.code) == (
        "acme",
        403,
        "ROLECHECK-1",
    )
    assert len(seen) == 1


def test_put_400_is_api_error_with_the_server_title() -> None:
    handler, _ = replies(errors(400, "INPUTCHECK-1", "serverAddress is not a string"))
    with pytest.raises(ApiError) as caught:
        run(make_session(handler), lambda s: api_key_tenant(s).put_email_config(BASIC, Secret("p")))
    assert type(caught.value) is ApiError
    assert (
        str(caught.value)
        == "PUT rejected by acme (400 INPUTCHECK-1): serverAddress is not a string"
    )
    assert (caught.value.status, caught.value.code) == (400, "INPUTCHECK-1")


def test_verify_connection_without_config_is_api_error_with_code() -> None:
    handler, _ = replies(errors(404, "VERIFYCONNECTION-1", "No email config for tenant"))
    with pytest.raises(ApiError) as caught:
        run(make_session(handler), lambda s: api_key_tenant(s).verify_connection())
    assert caught.value.code == "VERIFYCONNECTION-1"
    assert "no e-mail configuration to verify on acme (404 VERIFYCONNECTION-1)" in str(caught.value)


def test_non_json_error_body_is_truncated() -> None:
    handler, _ = replies(httpx.Response(418, text="<html>" + "x" * 5000 + "</html>"))
    with pytest.raises(ApiError) as caught:
        run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())
    message = str(caught.value)
    assert message.startswith("GET email-config failed on acme (418): <html>xxx")
    lead = len("GET email-config failed on acme (418): ")
    assert message.endswith("...") and len(message) == lead + MAX_DETAIL
    assert caught.value.code is None


def test_success_without_json_object_is_api_error() -> None:
    handler, _ = replies(httpx.Response(200, text="not json"))
    with pytest.raises(ApiError, match="answered 200 without a JSON object"):
        run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())


def test_secret_never_in_errors_or_logs_even_when_the_server_echoes_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        content = request.content.decode()
        # Echo the request from its secret on, so that truncation cannot hide a leak.
        echoed = content[max(content.find('"emailPassword"'), 0) :]
        echoed = f"{request.headers['authorization']} {echoed}"
        if request.method == "PUT":
            return errors(400, "INPUTCHECK-1", f"cannot parse {echoed}")
        return httpx.Response(500, text=f"crash while handling {echoed}")

    caplog.set_level(logging.DEBUG)
    secret = Secret(PASSWORD)
    for work in (
        lambda s: api_key_tenant(s).put_email_config(BASIC, secret),
        lambda s: api_key_tenant(s).send_test_email("a@b.example", "subject", "body"),
    ):
        with pytest.raises(ApiError) as caught:
            run(make_session(echo, max_retries=1), work)
        message = str(caught.value)
        assert REDACTED in message
        assert PASSWORD not in message and json.dumps(PASSWORD)[1:-1] not in message
        assert API_KEY not in message
    assert caplog.records  # the debug lines were captured, and hold no secret
    assert PASSWORD not in caplog.text and json.dumps(PASSWORD)[1:-1] not in caplog.text
    assert API_KEY not in caplog.text


# --- retries ------------------------------------------------------------------------------


def test_429_honours_retry_after_seconds() -> None:
    fake = FakeTime()
    handler, seen = replies(
        errors(429, "RATE-1", "Too many requests", **{"Retry-After": "7"}),
        httpx.Response(200, json=NO_CONFIG),
    )
    session = make_session(handler, fake)
    assert run(session, lambda s: api_key_tenant(s).get_email_config()) == NO_CONFIG
    assert fake.sleeps == [7.0]
    assert (session.stats.responses_429, session.stats.retries, len(seen)) == (1, 1, 2)


def test_429_honours_retry_after_as_http_date() -> None:
    fake = FakeTime()
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    retry_after = email.utils.format_datetime(when, usegmt=True)
    handler, _ = replies(
        httpx.Response(429, headers={"Retry-After": retry_after}),
        httpx.Response(200, json=NO_CONFIG),
    )
    run(make_session(handler, fake), lambda s: api_key_tenant(s).get_email_config())
    assert len(fake.sleeps) == 1 and 27.0 <= fake.sleeps[0] <= 30.0


def test_retry_after_longer_than_the_limit_is_an_error_not_a_wait() -> None:
    fake = FakeTime()
    handler, seen = replies(httpx.Response(429, headers={"Retry-After": "600"}))
    with pytest.raises(ApiError, match="Retry-After 600 s, longer than the 120 s") as caught:
        run(make_session(handler, fake), lambda s: api_key_tenant(s).get_email_config())
    assert caught.value.status == 429
    assert fake.sleeps == [] and len(seen) == 1


def test_5xx_is_retried_with_jittered_backoff_then_succeeds() -> None:
    fake = FakeTime()
    handler, seen = replies(
        httpx.Response(503), httpx.Response(502), httpx.Response(200, json=NO_CONFIG)
    )
    session = make_session(handler, fake, backoff_base_s=0.5)
    assert run(session, lambda s: api_key_tenant(s).get_email_config()) == NO_CONFIG
    assert len(seen) == 3 and session.stats.retries == 2
    assert 0 <= fake.sleeps[0] <= 0.5 and 0 <= fake.sleeps[1] <= 1.0


def test_retries_exhausted_is_api_error() -> None:
    handler, seen = replies(errors(500, "HTTP-500", "Internal error"))
    session = make_session(handler)
    with pytest.raises(ApiError) as caught:
        run(session, lambda s: api_key_tenant(s).get_email_config())
    assert str(caught.value) == (
        "GET email-config failed on acme (500 HTTP-500) after 5 attempts: Internal error"
    )
    assert caught.value.status == 500 and len(seen) == 5


def test_connection_error_is_retried() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    handler, seen = replies(refused, refused, httpx.Response(200, json=NO_CONFIG))
    assert run(make_session(handler), lambda s: api_key_tenant(s).get_email_config()) == NO_CONFIG
    assert len(seen) == 3


def test_connection_error_after_retries_says_what_happened() -> None:
    handler, seen = replies(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(ApiError) as caught:
        run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())
    assert str(caught.value) == (
        f"could not reach {BASE}{CONFIG_PATH}: connection refused after 5 attempts"
    )
    assert caught.value.status is None and caught.value.tenant == "acme"
    assert len(seen) == 5


def test_send_test_email_is_not_retried_on_500_or_timeout() -> None:
    for reply in (httpx.Response(500), httpx.ReadTimeout("timed out")):
        handler, seen = replies(reply, httpx.Response(200, json={"success": True}))
        with pytest.raises(ApiError):
            run(
                make_session(handler),
                lambda s: api_key_tenant(s).send_test_email("a@b.c", "s", "b"),
            )
        assert len(seen) == 1


def test_send_test_email_is_retried_after_429_and_sends_the_email() -> None:
    ok = {"success": True, "connectionFailed": False, "message": "Email sent"}
    handler, seen = replies(
        httpx.Response(429, headers={"Retry-After": "1"}),
        httpx.Response(200, json={**ok, "smtpResponseCode": 250, "accepted": ["a@b.example"]}),
    )
    result = run(
        make_session(handler),
        lambda s: api_key_tenant(s).send_test_email("a@b.example", "Subject", "Body"),
    )
    assert result == SmtpResult(True, False, "Email sent", 250, accepted=("a@b.example",))
    assert len(seen) == 2
    assert json.loads(seen[1].content) == {
        "recipient": "a@b.example",
        "subject": "Subject",
        "body": "Body",
    }


def test_retries_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="reconciler.client")
    handler, _ = replies(httpx.Response(503), httpx.Response(200, json=NO_CONFIG))
    run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())
    lines = [r.getMessage() for r in caplog.records if r.name == "reconciler.client"]
    assert any(line.startswith(f"acme GET {CONFIG_PATH} -> 503 in") for line in lines)
    assert any("retrying GET" in line and "after 503 (attempt 2 of 5)" in line for line in lines)


# --- operations ---------------------------------------------------------------------------


def test_delete_is_true_on_204_and_false_on_404() -> None:
    for reply, expected in (
        (httpx.Response(204), True),
        (errors(404, "DELETE-1", "No email config for tenant"), False),
    ):
        handler, seen = replies(reply)
        assert run(make_session(handler), lambda s: api_key_tenant(s).delete_email_config()) is (
            expected
        )
        assert seen[0].method == "DELETE"


def test_delete_404_after_a_retry_is_still_nothing_to_delete() -> None:
    handler, seen = replies(httpx.Response(503), errors(404, "DELETE-1", "No email config"))
    assert run(make_session(handler), lambda s: api_key_tenant(s).delete_email_config()) is False
    assert len(seen) == 2


def test_verify_connection_parses_its_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.url.path.endswith("/actions/verify-connection")
        body = {"success": False, "connectionFailed": True, "message": "ECONNREFUSED"}
        return httpx.Response(200, json={**body, "smtpResponseCode": "421 4.7.0"})

    verified = run(make_session(handler), lambda s: api_key_tenant(s).verify_connection())
    assert verified == SmtpResult(False, True, "ECONNREFUSED", 421)


def test_put_sends_the_body_with_the_secret() -> None:
    handler, seen = replies(httpx.Response(204))
    run(make_session(handler), lambda s: api_key_tenant(s).put_email_config(M365, Secret("cs")))
    assert seen[0].method == "PUT"
    assert json.loads(seen[0].content) == build_put_body(M365, Secret("cs"))


# --- the PUT body against the published schema ----------------------------------------------


def _schemas() -> dict[str, Any]:
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def validate_put_body(body: dict[str, Any]) -> None:
    schemas = _schemas()
    # The spec's providerConfig is a oneOf of putMicrosoft365Config and putBasicAuthConfig,
    # neither with `required` nor `additionalProperties`: any flat object matches BOTH, so
    # the oneOf always fails (see the next test). Check the envelope without it, and the
    # providerConfig against its own provider's schema, made strict so unknown keys fail.
    envelope = copy.deepcopy(schemas["putEmailConfig"])
    envelope["properties"]["providerConfig"] = {"type": "object"}
    envelope["required"] = ["serviceProvider", "providerConfig"]
    envelope["additionalProperties"] = False
    jsonschema.validate(body, envelope)
    name = {"BasicAuth": "putBasicAuthConfig", "Microsoft365": "putMicrosoft365Config"}
    strict = {**schemas[name[body["serviceProvider"]]], "additionalProperties": False}
    jsonschema.validate(body["providerConfig"], strict)


def test_put_body_is_a_flat_basic_auth_config_with_email_password() -> None:
    body = build_put_body(BASIC, Secret(PASSWORD))
    assert body == {
        "serviceProvider": "BasicAuth",
        "providerConfig": {
            "emailAddress": "qlik@acme.example",
            "emailPassword": PASSWORD,
            "securityType": "SSL/TLS",
            "senderName": "Acme Analytics",
            "serverAddress": "email-smtp.eu-west-2.amazonaws.com",
            "serverPort": 465,
            "username": "AKIAEXAMPLE",
        },
    }
    validate_put_body(body)


def test_put_body_for_microsoft365_carries_the_client_secret() -> None:
    body = build_put_body(M365, Secret("client-secret"))
    assert body["serviceProvider"] == "Microsoft365"
    assert body["providerConfig"]["clientSecret"] == "client-secret"
    assert set(body["providerConfig"]) == {
        "clientId",
        "clientSecret",
        "emailAddress",
        "providerTenantId",
    }
    validate_put_body(body)


def test_put_body_server_port_is_a_number() -> None:
    email = DesiredEmail(Provider.BASIC_AUTH, (("serverAddress", "smtp.x"), ("serverPort", "587")))
    assert build_put_body(email, Secret("p"))["providerConfig"]["serverPort"] == 587


def test_the_published_oneof_matches_both_providers_for_a_flat_object() -> None:
    schema = {**_schemas()["putEmailConfig"], "components": {"schemas": _schemas()}}
    with pytest.raises(jsonschema.ValidationError, match="is valid under each of"):
        jsonschema.validate(build_put_body(BASIC, Secret("p")), schema)


# --- pacing -------------------------------------------------------------------------------


def test_fourth_tier2_call_waits_until_the_window_frees() -> None:
    fake = FakeTime()
    times: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        times.append((request.method, fake.now))
        return (
            httpx.Response(200, json=NO_CONFIG) if request.method == "GET" else httpx.Response(204)
        )

    async def work(s: ApiSession) -> None:
        tenant = api_key_tenant(s)
        await tenant.delete_email_config()
        fake.now += 20
        await tenant.delete_email_config()
        await tenant.delete_email_config()
        await tenant.get_email_config()  # Tier 1 is not held up by a full Tier 2 window
        await api_key_tenant(s, "https://other.example.com", "other").delete_email_config()
        assert fake.sleeps == []
        await tenant.delete_email_config()

    run(make_session(handler, fake, tier2_per_minute=3), work)
    assert fake.sleeps == [40.0]
    assert times == [
        ("DELETE", 0.0),
        ("DELETE", 20.0),
        ("DELETE", 20.0),
        ("GET", 20.0),
        ("DELETE", 20.0),
        ("DELETE", 60.0),
    ]


def test_concurrent_calls_on_one_tenant_share_its_window() -> None:
    fake = FakeTime()
    times: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        times.append(fake.now)
        return httpx.Response(204)

    async def work(s: ApiSession) -> None:
        tenant = api_key_tenant(s)
        await asyncio.gather(*(tenant.delete_email_config() for _ in range(7)))

    run(make_session(handler, fake, tier2_per_minute=3), work)
    assert sorted(times) == [0.0, 0.0, 0.0, 60.0, 60.0, 60.0, 120.0]


def test_no_pacing_when_pace_is_false() -> None:
    fake = FakeTime()
    handler, seen = replies(httpx.Response(204))

    async def work(s: ApiSession) -> None:
        for _ in range(10):
            await api_key_tenant(s).delete_email_config()

    run(make_session(handler, fake, tier2_per_minute=3, pace=False), work)
    assert fake.sleeps == [] and len(seen) == 10


# --- the wire: one client, bounded in time and size ----------------------------------------


def test_at_most_connections_requests_are_on_the_wire_at_once() -> None:
    on_the_wire: list[int] = [0, 0]  # now, most

    async def handler(request: httpx.Request) -> httpx.Response:
        on_the_wire[0] += 1
        on_the_wire[1] = max(on_the_wire)
        await asyncio.sleep(0.001)
        on_the_wire[0] -= 1
        return httpx.Response(200, json=NO_CONFIG)

    async def work(s: ApiSession) -> None:
        urls = [f"https://tenant{i}.example.com" for i in range(40)]
        await asyncio.gather(*(api_key_tenant(s, url).get_email_config() for url in urls))

    run(make_session(handler, connections=6), work)
    assert on_the_wire[1] == 6


def test_requests_carry_a_connect_timeout_only() -> None:
    """The deadline bounds the whole exchange; a read timeout could not fire first."""
    handler, seen = replies(httpx.Response(200, json=NO_CONFIG))
    run(make_session(handler, timeout_s=20), lambda s: api_key_tenant(s).get_email_config())
    assert seen[0].extensions["timeout"] == {
        "connect": 10.0,
        "read": None,
        "write": None,
        "pool": None,
    }


def test_the_deadline_covers_the_whole_response_not_only_idle_time() -> None:
    async def drip() -> AsyncIterator[bytes]:
        for _ in range(100):
            await asyncio.sleep(0.02)  # never idle long, never done in time
            yield b" "

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=drip())

    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        run(
            make_session(handler, timeout_s=0.2, max_retries=1),
            lambda s: api_key_tenant(s).get_email_config(),
        )
    assert time.monotonic() - started < 1.5
    assert str(caught.value) == (
        f"could not reach {BASE}{CONFIG_PATH}: no complete response within 0.2 s after 2 attempts"
    )
    assert len(seen) == 2  # a timeout is retried


def test_a_body_over_max_response_bytes_is_an_api_error_and_not_retried() -> None:
    pulled: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            pulled.append(1)
            yield b"x" * 1024

    for reply in (
        httpx.Response(200, content=b" " * 4097),  # Content-Length says it at once
        httpx.Response(503, content=endless()),  # chunked: read until past the cap
    ):
        pulled.clear()
        handler, seen = replies(reply)
        with pytest.raises(ApiError) as caught:
            run(
                make_session(handler, max_response_bytes=4096),
                lambda s: api_key_tenant(s).get_email_config(),
            )
        status = reply.status_code
        assert str(caught.value) == (
            f"GET email-config on acme answered {status} with a body of more than 4096 bytes, "
            "the most this tool reads (max_response_bytes); check the tenant URL"
        )
        assert caught.value.status == status and len(seen) == 1
        assert len(pulled) <= 5


def test_deeply_nested_json_is_an_api_error_not_a_recursion_error() -> None:
    nested = {"isValid": json.loads("[" * 40 + "]" * 40)}
    for body in ("[" * 100_000 + "]" * 100_000, json.dumps(nested)):
        handler, _ = replies(httpx.Response(200, text=body))
        with pytest.raises(ApiError, match=r"without a JSON object \(JSON nested deeper than 32"):
            run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())
    # An error body nested that deep is reported as text.
    handler, _ = replies(httpx.Response(400, text="[" * 100_000))
    with pytest.raises(ApiError, match=r"failed on acme \(400\): \[\[\[\["):
        run(make_session(handler), lambda s: api_key_tenant(s).get_email_config())


def test_json_within_the_depth_limit_is_parsed() -> None:
    deep = "[" * 32 + "]" * 32
    assert parse_json(deep.encode()) == json.loads(deep)
    wide = {"items": [{"a": [1]} for _ in range(50)]}  # many brackets, little depth
    assert parse_json(json.dumps(wide).encode()) == wide
    with pytest.raises(ValueError, match="nested deeper than 32"):
        parse_json(("[" * 33 + "]" * 33).encode())


# --- the real transport (aiohttp), against servers on 127.0.0.1 ------------------------------


@contextmanager
def tcp_server(serve: Callable[[socket.socket], None]) -> Iterator[str]:
    """http://127.0.0.1:PORT, whose every connection is handled by `serve` in a
    thread; every thread has ended when the block exits (test_forking counts them)."""
    listener = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            threads.append(threading.Thread(target=_serve_quietly, args=(serve, conn)))
            threads[-1].start()

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes accept(), which close() alone does not
        listener.close()
        acceptor.join()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join()
        for conn in conns:
            conn.close()


def _serve_quietly(serve: Callable[[socket.socket], None], conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        serve(conn)


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def real_session(**options: Any) -> ApiSession:
    async def no_sleep(seconds: float) -> None:
        pass

    return ApiSession(ClientOptions(sleep=no_sleep, **options))


def test_the_session_runs_one_aiohttp_transport_that_keeps_no_cookies() -> None:
    cookies: list[str | None] = []

    def serve(conn: socket.socket) -> None:
        while request := read_request(conn):
            lines = request.split(b"\r\n")
            header = [line for line in lines if line.lower().startswith(b"cookie:")]
            cookies.append(header[0].decode() if header else None)
            body = json.dumps(NO_CONFIG).encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )

    async def work(s: ApiSession) -> None:
        assert s._wire._transport is None  # nothing is built before the first request
        tenant = api_key_tenant(s, base)
        for _ in range(3):
            assert await tenant.get_email_config() == NO_CONFIG
        transport = s._wire._transport
        assert isinstance(transport, Transport)
        aio = transport._session
        assert isinstance(aio, aiohttp.ClientSession)
        assert isinstance(aio.cookie_jar, aiohttp.DummyCookieJar)
        assert aio.connector is not None and aio.connector.limit == 8
        assert transport._ssl is tls.shared()

    with tcp_server(serve) as base:
        run(real_session(connections=8), work)
    assert cookies == [None, None, None]


def test_a_server_sending_a_byte_at_a_time_is_cut_off_at_the_deadline() -> None:
    def serve(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            conn.sendall(b" ")  # each byte well within the read timeout
            time.sleep(0.1)

    started = time.monotonic()
    with tcp_server(serve) as base, pytest.raises(ApiError) as caught:
        run(
            real_session(timeout_s=0.5, max_retries=0),
            lambda s: api_key_tenant(s, base).get_email_config(),
        )
    assert time.monotonic() - started < 2
    assert "no complete response within 0.5 s after 1 attempt" in str(caught.value)


def _answer(body: bytes, *headers: bytes, chunked: bool = False) -> Callable[[socket.socket], None]:
    """A server answering every request with `body` (as given: already encoded)."""

    def serve(conn: socket.socket) -> None:
        while read_request(conn):
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"".join(
                header + b"\r\n" for header in headers
            )
            if not chunked:
                conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                continue
            conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
            for start in range(0, len(body), 8192):
                piece = body[start : start + 8192]
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.sendall(b"0\r\n\r\n")

    return serve


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("encoding", [b"gzip", b"deflate", None])
def test_bodies_read_over_the_wire_plain_or_compressed(
    encoding: bytes | None, chunked: bool
) -> None:
    config = {**NO_CONFIG, "padding": "x" * 50_000}
    body = json.dumps(config).encode()
    headers: list[bytes] = []
    if encoding is not None:
        body = gzip.compress(body) if encoding == b"gzip" else zlib.compress(body)
        headers.append(b"Content-Encoding: " + encoding)
    with tcp_server(_answer(body, *headers, chunked=chunked)) as base:
        got = run(real_session(), lambda s: api_key_tenant(s, base).get_email_config())
    assert got == config


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("encoding", [b"gzip", None])
def test_a_body_over_the_cap_over_the_wire_is_refused_compressed_or_not(
    encoding: bytes | None, chunked: bool
) -> None:
    """A 20 MB body, or 20 KB of gzip that decodes to 20 MB (a "bomb"): refused
    past max_response_bytes, without reading or decoding it all."""
    body = b"[" + b" " * 20_000_000 + b"]"
    headers: list[bytes] = []
    if encoding is not None:
        body = gzip.compress(body)
        headers.append(b"Content-Encoding: gzip")
    started = time.monotonic()
    with (
        tcp_server(_answer(body, *headers, chunked=chunked)) as base,
        pytest.raises(ApiError) as caught,
    ):
        run(real_session(), lambda s: api_key_tenant(s, base).get_email_config())
    assert "with a body of more than 524288 bytes" in str(caught.value)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("names", [["gzip", "gzip"], ["gzip", "deflate"], ["deflate", "gzip"]])
def test_stacked_encodings_are_undone_over_the_wire(names: list[str]) -> None:
    config = {**NO_CONFIG, "padding": "x" * 50_000}
    body = json.dumps(config).encode()
    for name in names:
        body = gzip.compress(body) if name == "gzip" else zlib.compress(body)
    header = b"Content-Encoding: " + ", ".join(names).encode()
    with tcp_server(_answer(body, header, chunked=True)) as base:
        got = run(real_session(), lambda s: api_key_tenant(s, base).get_email_config())
    assert got == config


@pytest.mark.parametrize(
    ("tenant", "label"),
    [(api_key_tenant, "GET email-config"), (oauth_tenant, "token request")],
)
def test_a_stacked_bomb_over_the_wire_is_refused_at_the_cap(
    tenant: Callable[[ApiSession, str], TenantClient], label: str
) -> None:
    """gzip inside gzip: 1 GiB of zeros in a few kilobytes, from the API or from
    the OAuth token endpoint. The cap holds on the bytes as each layer produces
    them, not once a chunk is inflated whole."""
    bomb = gzip.compress(gzipped_zeros(1 << 30))
    started = time.monotonic()
    with (
        tcp_server(_answer(bomb, b"Content-Encoding: gzip, gzip")) as base,
        pytest.raises(ApiError) as caught,
    ):
        run(real_session(), lambda s: tenant(s, base).get_email_config())
    assert f"{label} on acme answered 200 with a body of more than 524288 bytes" in str(
        caught.value
    )
    assert time.monotonic() - started < 2


def test_an_encoding_the_client_did_not_offer_is_refused() -> None:
    seen: list[str] = []

    def serve(conn: socket.socket) -> None:
        while request := read_request(conn):
            seen.append(request.decode("latin-1").lower())
            body = b"not really brotli"
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )

    with tcp_server(serve) as base, pytest.raises(ApiError) as caught:
        run(real_session(max_retries=0), lambda s: api_key_tenant(s, base).get_email_config())
    assert "could not be decoded" in str(caught.value)
    assert "accept-encoding: gzip, deflate\r\n" in seen[0]


def _close_at_once(conn: socket.socket) -> None:
    read_request(conn)


def _cut_the_body(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}")


def _garble(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 OK 200\r\n\r\n")


@pytest.mark.parametrize(
    ("serve", "expected"),
    [
        (None, "connection refused"),
        (_close_at_once, "the server closed the connection unexpectedly"),
        (_cut_the_body, "the server closed the connection unexpectedly"),
        (_garble, "the server closed the connection unexpectedly"),
    ],
)
def test_connection_failures_are_retried_then_api_errors(
    serve: Callable[[socket.socket], None] | None, expected: str
) -> None:
    with contextlib.ExitStack() as stack:
        if serve is None:  # a port nobody listens on
            with socket.create_server(("127.0.0.1", 0)) as free:
                base = f"http://127.0.0.1:{free.getsockname()[1]}"
        else:
            base = stack.enter_context(tcp_server(serve))
        with pytest.raises(ApiError) as caught:
            run(real_session(max_retries=2), lambda s: api_key_tenant(s, base).get_email_config())
    assert str(caught.value) == f"could not reach {base}{CONFIG_PATH}: {expected} after 3 attempts"


def _key() -> Any:
    return types.SimpleNamespace(host="acme.example.com", port=443, ssl=True, is_ssl=True)


@pytest.mark.parametrize(
    ("raised", "expected", "retried"),
    [
        (
            aiohttp.ClientConnectorError(
                _key(), ConnectionRefusedError(111, "Connect call failed")
            ),
            "connection refused",
            True,
        ),
        (
            aiohttp.ClientConnectorError(_key(), socket.gaierror(-2, "Name or service not known")),
            "the host name does not resolve",
            True,
        ),
        (
            aiohttp.ClientConnectorCertificateError(
                _key(), ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] x")
            ),
            "TLS certificate verification failed",
            False,
        ),
        (aiohttp.ConnectionTimeoutError("x"), "connection timed out", True),
        (aiohttp.SocketTimeoutError("x"), "timed out waiting for the response", True),
        (aiohttp.ServerDisconnectedError(), "the server closed the connection", True),
        (aiohttp.ClientPayloadError("x"), "the server closed the connection", True),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), "ReadError", True),
        (
            aiohttp.ClientProxyConnectionError(_key(), ConnectionRefusedError(111, "refused")),
            "the proxy failed",
            False,
        ),
    ],
)
def test_aiohttp_failures_read_as_httpx_ones(
    raised: aiohttp.ClientError, expected: str, retried: bool
) -> None:
    # httpx_aiohttp maps every connection error to httpx.ConnectTimeout: ours
    # tells them apart.
    translated = translate(raised)
    assert describe_transport_error(translated).startswith(expected)
    assert is_retryable(translated) is retried


def test_oauth_over_the_real_transport_fetches_then_refreshes_after_a_401() -> None:
    from reconciler.sandbox import Sandbox

    with Sandbox(tenants=1, seed=3) as sb:
        tenant = sb.tenants[0]
        credentials = OAuthCredentials(tenant.oauth_client_id, Secret(tenant.oauth_client_secret))

        async def work(s: ApiSession) -> None:
            client = s.tenant(tenant.name, tenant.url, credentials)
            await client.get_email_config()
            await client.get_email_config()
            sb.advance_time(sb.token_lifetime_s + 1)  # the tenant's clock: our token expires
            await client.get_email_config()

        session = real_session()
        run(session, work)
        tokens = [e for e in sb.request_log if e.path == "/oauth/token"]
        statuses = [e.status for e in sb.request_log if e.path != "/oauth/token"]
    assert session.stats.token_fetches == len(tokens) == 2
    assert statuses == [200, 200, 401, 200]


def test_a_request_imports_nothing_once_the_client_is_warm() -> None:
    # httpcore imported sniffio on every lock it set up, searching sys.path each
    # time when it was missing: nothing on our path may do that.
    def serve(conn: socket.socket) -> None:
        while read_request(conn):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    searched: list[str] = []

    class Recorder(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, *args: object) -> None:
            searched.append(name)

    async def work(s: ApiSession) -> None:
        tenant = api_key_tenant(s, base)
        await tenant.get_email_config()
        sys.meta_path.insert(0, Recorder())
        try:
            for _ in range(20):
                await tenant.get_email_config()
        finally:
            del sys.meta_path[0]

    with tcp_server(serve) as base:
        run(real_session(), work)
    assert searched == []


def test_client_options_are_validated() -> None:
    with pytest.raises(ValueError, match="connections, max_response_bytes, tier2_per_minute"):
        ClientOptions(connections=0, max_response_bytes=0, tier2_per_minute=0)


def test_tenant_url_must_be_http_without_query() -> None:
    session = ApiSession()
    for url in ("acme.eu.qlikcloud.com", "ftp://acme.example.com", "https://acme.example.com?x=1"):
        with pytest.raises(RequestError, match="tenant acme"):  # the project's own error
            api_key_tenant(session, url)


def test_different_oauth_clients_on_one_tenant_get_their_own_tokens() -> None:
    fake = FakeTenant()

    async def work(s: ApiSession) -> None:
        await oauth_tenant(s).get_email_config()
        other = OAuthCredentials("client-2", Secret("other-secret"))
        await s.tenant("acme", BASE, other).get_email_config()
        await oauth_tenant(s).get_email_config()

    run(make_session(fake), work)
    assert [body["client_id"] for body in fake.token_requests] == ["client-1", "client-2"]


@pytest.mark.parametrize(
    "base",
    [
        "ftp://acme.example",
        "https://acme.example/?x=1",
        "https://acme.example#top",
        "https://acme.example/?",
        "http://",
        "https://acme.example:99999",
        "https://acme.example:port",
        "https://acme example",
        "https://acme.example/\x00",
        "https://acme.example/\nHost: evil",
        "https:///path-only",
        "https://\u00a1.example",  # not valid IDNA
    ],
)
def test_a_tenant_url_that_is_not_plain_http_is_refused_before_any_request(base: str) -> None:
    async def main() -> None:
        async with ApiSession(ClientOptions()) as session:
            with pytest.raises(RequestError, match=r"tenant acme: .* URL"):
                session.tenant("acme", base, ApiKeyCredentials(Secret(API_KEY)))
            assert session.stats.requests == 0

    asyncio.run(main())
