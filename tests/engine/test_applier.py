"""The applier against httpx.MockTransport: the order of calls and the outcome
of each failure, without a server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from helpers import basic, live_basic, live_none, spec

from reconciler.client import ApiSession, ClientOptions
from reconciler.engine.applier import ApplyOptions, Outcome, apply_plan
from reconciler.engine.planner import make_plan
from reconciler.secrets import ResolvePolicy, SecretResolver

GET_OK = {
    "serviceProvider": "BasicAuth",
    "providerConfig": dict(basic().fields),
    "passwordExists": True,
    "isValid": True,
}


async def no_sleep(_: float) -> None:
    return None


def run(handler, tenants, live, **options):
    calls: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path.rsplit('/email-config', 1)[-1] or '/'}")
        return handler(request)

    plan = make_plan(tenants, live)
    resolver = SecretResolver(
        ResolvePolicy(base_dir=Path("."), env={"QLIK_API_KEY": "k", "SMTP_PASSWORD": "p"})
    )

    async def go():
        client_options = ClientOptions(
            transport=httpx.MockTransport(record), sleep=no_sleep, pace=False
        )
        async with ApiSession(client_options) as session:
            return await apply_plan(
                session,
                plan,
                {t.name: t for t in tenants},
                resolver,
                ApplyOptions(recheck=False, **options),
                concurrency=64,
            )

    return asyncio.run(go()), calls


def test_create_runs_put_verify_then_read_back():
    def handler(request):
        if request.method == "PUT":
            return httpx.Response(204)
        if request.url.path.endswith("verify-connection"):
            return httpx.Response(
                200, json={"success": True, "connectionFailed": False, "message": "ok"}
            )
        return httpx.Response(200, json=GET_OK)

    report, calls = run(handler, [spec("acme", basic())], {"acme": live_none()})
    assert calls == ["PUT /", "POST /actions/verify-connection", "GET /"]
    assert report.results[0].outcome is Outcome.APPLIED
    assert report.ok


def test_verify_that_cannot_run_after_put_is_verify_failed_not_failed():
    def handler(request):
        if request.method == "PUT":
            return httpx.Response(204)
        return httpx.Response(500, json={"errors": [{"code": "X-1", "title": "boom"}]})

    report, _ = run(handler, [spec("acme", basic())], {"acme": live_none()})
    result = report.results[0]
    assert result.outcome is Outcome.VERIFY_FAILED
    assert result.message.startswith("saved, but could not be confirmed:")
    assert not report.ok


def test_rejected_put_is_failed_and_stops_that_tenant_only():
    def handler(request):
        if request.method == "PUT" and "bad" in str(request.url):
            return httpx.Response(
                400, json={"errors": [{"code": "INPUTCHECK-2", "title": "535 auth failed"}]}
            )
        if request.method == "PUT":
            return httpx.Response(204)
        if request.url.path.endswith("verify-connection"):
            return httpx.Response(200, json={"success": True})
        return httpx.Response(200, json=GET_OK)

    tenants = [spec("bad", basic()), spec("good", basic())]
    report, calls = run(handler, tenants, {"bad": live_none(), "good": live_none()})
    outcomes = {r.tenant: r.outcome for r in report.results}
    assert outcomes == {"bad": Outcome.FAILED, "good": Outcome.APPLIED}
    assert "535 auth failed" in report.results[0].message
    assert calls.count("PUT /") == 2


def test_read_back_that_still_differs_is_reported():
    def handler(request):
        if request.method == "PUT":
            return httpx.Response(204)
        if request.url.path.endswith("verify-connection"):
            return httpx.Response(200, json={"success": True})
        return httpx.Response(
            200, json={**GET_OK, "providerConfig": {**GET_OK["providerConfig"], "serverPort": 1}}
        )

    report, _ = run(handler, [spec("acme", basic())], {"acme": live_none()})
    assert report.results[0].outcome is Outcome.VERIFY_FAILED
    assert "still differs from the desired state (serverPort)" in report.results[0].message


def test_missing_secret_fails_before_any_write():
    methods: list[str] = []

    def handler(request):
        methods.append(request.method)
        return httpx.Response(204)

    tenants = [spec("acme", basic(serverPort=465))]
    plan = make_plan(tenants, {"acme": live_basic()})
    env_less = SecretResolver(ResolvePolicy(base_dir=Path("."), env={"QLIK_API_KEY": "k"}))

    async def go():
        options = ClientOptions(transport=httpx.MockTransport(handler), sleep=no_sleep)
        async with ApiSession(options) as session:
            return await apply_plan(
                session,
                plan,
                {t.name: t for t in tenants},
                env_less,
                ApplyOptions(recheck=False),
                concurrency=64,
            )

    result = asyncio.run(go()).results[0]
    assert result.outcome is Outcome.FAILED
    assert "SMTP_PASSWORD is not set" in result.message
    assert "PUT" not in methods


def test_stop_event_skips_tenants_not_started():
    stop = asyncio.Event()
    stop.set()
    tenants = [spec(f"t{i}", basic()) for i in range(3)]
    plan = make_plan(tenants, {t.name: live_none() for t in tenants})
    resolver = SecretResolver(
        ResolvePolicy(base_dir=Path("."), env={"QLIK_API_KEY": "k", "SMTP_PASSWORD": "p"})
    )

    async def go():
        options = ClientOptions(
            transport=httpx.MockTransport(lambda r: httpx.Response(500)), sleep=no_sleep
        )
        async with ApiSession(options) as session:
            return await apply_plan(
                session,
                plan,
                {t.name: t for t in tenants},
                resolver,
                ApplyOptions(),
                concurrency=64,
                stop=stop,
            )

    report = asyncio.run(go())
    assert report.interrupted
    assert [r.outcome for r in report.results] == [Outcome.SKIPPED] * 3
    assert all(r.message == "interrupted before it started" for r in report.results)


def test_a_long_verify_message_is_kept_up_to_the_documented_bound():
    from reconciler.client.failures import MAX_DETAIL

    reply = "535-5.7.8 " + "credentials rejected by the relay; " * 60

    def handler(request):
        if request.method == "PUT":
            return httpx.Response(204)
        if request.url.path.endswith("verify-connection"):
            return httpx.Response(200, json={"success": False, "message": reply})
        return httpx.Response(200, json=GET_OK)

    report, _ = run(handler, [spec("acme", basic())], {"acme": live_none()})
    message = report.results[0].message
    assert "credentials rejected by the relay; " * 20 in message  # not cut at 200
    assert len(message) < MAX_DETAIL + 100
