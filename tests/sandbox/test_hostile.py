"""The sandbox's hostile tenants, driven over real HTTP."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator

import click
import httpx
import pytest
from click.testing import CliRunner

from reconciler.sandbox import Sandbox
from reconciler.sandbox.__main__ import _hostile
from reconciler.sandbox.cli import parse_hostile, sandbox_command
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.hostile import (
    BOMB_BYTES,
    DEEP_LEVELS,
    HUGE_BYTES,
    PAYLOADS,
    echo_forms,
)

EMAIL_CONFIG = "/api/v1/transports/email-config"
PASSWORD = 'pa ss/w0rd+"x%2F'
NAMES = ["echo", "endless", "huge", "deep", "bomb", "retry", "plain"]


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    hostile = {
        "endless": ["endless"],
        "huge": ["huge"],
        "deep": ["deep"],
        "bomb": ["stacked-bomb"],
        "retry": ["retry-after-forever"],
    }
    with Sandbox(names=NAMES, seed=5, rate_limits=False, hostile=hostile) as sandbox:
        sandbox.set_smtp_password("echo", PASSWORD)
        yield sandbox


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


def admin(sb: Sandbox, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.tenant(name).api_key}"}


def test_echo_secret_spells_the_put_password_every_way_in_later_answers(
    sb: Sandbox, http: httpx.Client
) -> None:
    sb.faults.set(hostile=("echo-secret",), tenant="echo")
    url = sb.tenant("echo").url + EMAIL_CONFIG
    put = http.put(url, json=sb.basic_auth_body("echo"), headers=admin(sb, "echo"))
    assert put.status_code in (200, 204)
    verify = http.post(url + "/actions/verify-connection", headers=admin(sb, "echo")).json()
    for form in echo_forms(PASSWORD) + echo_forms(sb.tenant("echo").api_key):
        assert form in verify["message"]
    got = http.get(url, headers=admin(sb, "echo")).json()
    assert PASSWORD in got["errorCode"] and PASSWORD in got["status"]["statusReason"]
    assert PASSWORD in got["providerConfig"]["serverAddress"]
    assert got["serviceProvider"] == "BasicAuth"  # what the client needs stays intact


def test_setting_faults_again_forgets_the_secrets_sent(sb: Sandbox, http: httpx.Client) -> None:
    sb.faults.set(hostile=("echo-secret",), tenant="echo")
    got = http.get(sb.tenant("echo").url + EMAIL_CONFIG, headers=admin(sb, "echo")).json()
    assert PASSWORD not in json.dumps(got)
    assert sb.tenant("echo").api_key in got["errorCode"]


def test_payloads_land_in_every_string(sb: Sandbox, http: httpx.Client) -> None:
    sb.faults.set(hostile=("payloads",), errors={400: 1.0}, tenant="echo")
    got = http.get(sb.tenant("echo").url + EMAIL_CONFIG, headers=admin(sb, "echo")).json()
    error = got["errors"][0]
    for payload in PAYLOADS:
        assert payload in error["title"] and payload in error["code"]


def test_a_refused_token_request_echoes_the_client_in_oauth_error_shape(
    sb: Sandbox, http: httpx.Client
) -> None:
    tenant = sb.tenant("echo")
    sb.faults.set(hostile=("echo-secret",), token_errors={401: 1.0}, tenant="echo")
    body = {
        "grant_type": "client_credentials",
        "client_id": tenant.oauth_client_id,
        "client_secret": tenant.oauth_client_secret,
    }
    answer = http.post(tenant.url + "/oauth/token", json=body)
    assert answer.status_code == 401
    document = answer.json()
    assert tenant.oauth_client_id in document["error_description"]
    assert tenant.oauth_client_secret in document["error"]


def test_a_huge_body_declares_300_mb(sb: Sandbox, http: httpx.Client) -> None:
    url = sb.tenant("huge").url + EMAIL_CONFIG
    with http.stream("GET", url, headers=admin(sb, "huge")) as answer:
        assert int(answer.headers["content-length"]) == HUGE_BYTES
        assert len(next(answer.iter_bytes())) > 0


def test_an_endless_body_goes_on_past_any_limit(sb: Sandbox, http: httpx.Client) -> None:
    url = sb.tenant("endless").url + EMAIL_CONFIG
    with http.stream("GET", url, headers=admin(sb, "endless")) as answer:
        assert "content-length" not in answer.headers
        read = 0
        for chunk in answer.iter_bytes():
            read += len(chunk)
            if read > 4 * 1024 * 1024:
                break
    assert read > 4 * 1024 * 1024


def test_a_deep_body_nests_beyond_any_parser(sb: Sandbox, http: httpx.Client) -> None:
    answer = http.get(sb.tenant("deep").url + EMAIL_CONFIG, headers=admin(sb, "deep"))
    assert answer.content == b"[" * DEEP_LEVELS + b"]" * DEEP_LEVELS


def test_a_stacked_bomb_is_gzip_inside_gzip_of_4_gib_of_zeros(
    sb: Sandbox, http: httpx.Client
) -> None:
    url = sb.tenant("bomb").url + EMAIL_CONFIG
    with http.stream("GET", url, headers=admin(sb, "bomb")) as answer:
        assert answer.headers["content-encoding"] == "gzip, gzip"
        wire = b"".join(answer.iter_raw())
    assert len(wire) < 16 * 1024
    inner = zlib.decompress(wire, zlib.MAX_WBITS | 16)
    assert len(inner) < 8 * 1024 * 1024  # a compressed MiB, 4,096 times
    start = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(inner, 1 << 20)
    assert start == bytes(1 << 20)
    assert int.from_bytes(inner[-4:], "little") == BOMB_BYTES % (1 << 32)


def test_retry_after_forever_answers_every_request_503(sb: Sandbox, http: httpx.Client) -> None:
    for method in ("GET", "PUT", "DELETE"):
        answer = http.request(
            method, sb.tenant("retry").url + EMAIL_CONFIG, headers=admin(sb, "retry")
        )
        assert (answer.status_code, answer.headers["retry-after"]) == (503, "30")
    token = http.post(sb.tenant("retry").url + "/oauth/token", data={"grant_type": "x"})
    assert token.status_code == 503


def test_the_main_cli_names_a_hostile_tenant_or_takes_the_first() -> None:
    assert parse_hostile(["stacked-bomb", "t-2=retry-after-forever,payloads"], "t-1") == {
        "t-1": ["stacked-bomb"],
        "t-2": ["retry-after-forever", "payloads"],
    }
    for bad in ("=huge", "t-1=", ""):
        with pytest.raises(click.BadParameter, match="expected"):
            parse_hostile([bad], "t-1")


def test_qlik_email_sandbox_refuses_an_unknown_kind_or_tenant() -> None:
    for value, why in (("friendly", "unknown kind"), ("nobody=huge", "no tenant named nobody")):
        result = CliRunner().invoke(sandbox_command, ["--tenants", "1", "--hostile", value])
        assert result.exit_code == 2 and why in result.output, result.output


def test_hostile_kinds_are_checked() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="unknown kind"):
        faults.set(hostile=("friendly",))
    with pytest.raises(ValueError, match="at most one"):
        faults.set(hostile=("huge", "endless"))
    assert _hostile(["a=huge", "b=echo-secret,payloads"]) == {
        "a": ["huge"],
        "b": ["echo-secret", "payloads"],
    }
