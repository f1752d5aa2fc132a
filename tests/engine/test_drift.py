import json
from datetime import date

import jsonschema
from helpers import basic, live_basic, live_none, spec

from reconciler.client.live import normalize
from reconciler.documents.drift import drift_document
from reconciler.engine.drift import ConnectionCheck, assess, build_report
from reconciler.jsonschemas import load_schema
from reconciler.model import IgnoreRule, ReadFailure
from reconciler.report.drift import render_drift_markdown, render_drift_text

TODAY = date(2026, 11, 22)


def test_matching_healthy_tenant_is_clean():
    result = assess(spec("acme", basic()), live_basic(), [], TODAY)
    assert result.clean


def test_changed_field_is_drift():
    result = assess(spec("acme", basic()), live_basic(serverPort=25), [], TODAY)
    assert result.drifted
    assert [c.field for c in result.changes] == ["serverPort"]


def test_unexpired_ignore_rule_silences_the_field():
    rule = IgnoreRule("ac*", "serverPort", "migration OPS-1", date(2026, 12, 31))
    result = assess(spec("acme", basic()), live_basic(serverPort=25), [rule], TODAY)
    assert result.clean
    assert result.ignored == (("serverPort", "migration OPS-1"),)


def test_expired_ignore_rule_silences_nothing():
    rule = IgnoreRule("acme", "*", "old", date(2026, 11, 21))
    result = assess(spec("acme", basic()), live_basic(serverPort=25), [rule], TODAY)
    assert result.drifted


def test_health_problems_from_the_api():
    live = normalize(
        {
            "serviceProvider": "BasicAuth",
            "providerConfig": dict(basic().fields),
            "passwordExists": True,
            "isValid": False,
            "errorCode": "INVALID_CREDENTIALS",
            "authFailures": 2,
        }
    )
    result = assess(
        spec("acme", basic()), live, [], TODAY, verify=ConnectionCheck(False, "535 auth failed")
    )
    codes = [p.code for p in result.problems]
    assert codes == ["invalid", "error:INVALID_CREDENTIALS", "auth-failures", "verify-failed"]
    assert result.unhealthy and not result.drifted


def test_absent_tenant_without_config_is_clean_and_not_unhealthy():
    assert assess(spec("acme", None), live_none(), [], TODAY).clean


def test_fingerprint_is_stable_while_the_same_things_drift():
    specs = [spec("a", basic()), spec("b", basic())]
    first = build_report(specs, {"a": live_basic(serverPort=25), "b": live_basic()}, [], TODAY)
    second = build_report(specs, {"a": live_basic(serverPort=26), "b": live_basic()}, [], TODAY)
    other = build_report(specs, {"a": live_basic(), "b": live_basic(serverPort=25)}, [], TODAY)
    assert first.fingerprint == second.fingerprint
    assert first.fingerprint != other.fingerprint


def test_reports_render_and_validate():
    specs = [spec("a", basic()), spec("b", basic()), spec("c", basic())]
    report = build_report(
        specs,
        {"a": live_basic(serverPort=25), "b": live_basic(), "c": ReadFailure("refused")},
        [],
        TODAY,
    )
    document = drift_document(report)
    jsonschema.Draft202012Validator(load_schema("drift-report.schema.json")).validate(document)
    assert json.loads(json.dumps(document))["summary"] == {
        "drifted": 1,
        "unhealthy": 0,
        "errors": 1,
        "clean": 1,
        "paused": 0,
        "driftedAndUnhealthy": 0,
    }
    text = render_drift_text(report)
    assert "serverPort: live 25, desired 587" in text
    assert "Drift: 1 drifted, 0 unhealthy, 1 unreadable, 1 clean." in text
    assert "| a | serverPort: live 25, desired 587 | - |" in render_drift_markdown(report)


def test_a_tenant_both_drifted_and_unhealthy_is_counted_once_and_the_reason_is_shown():
    unhealthy = {
        "serviceProvider": "BasicAuth",
        "providerConfig": {**dict(basic().fields), "serverPort": 25},
        "passwordExists": True,
        "isValid": False,
        "errorCode": "PROVIDER_ERROR",
        "status": {
            "statusCode": 535,
            "statusReason": "535 5.7.8 Authentication\ncredentials invalid",
        },
    }
    specs = [spec(name, basic()) for name in ("a", "b", "c", "d")]
    live = {"a": normalize(unhealthy), "b": live_basic(), "c": live_basic(), "d": live_basic()}
    live["b"] = normalize({**unhealthy, "providerConfig": dict(basic().fields)})
    report = build_report(specs, live, [], TODAY)
    assert [t.status for t in report.tenants] == ["drifted", "unhealthy", "clean", "clean"]
    summary = drift_document(report)["summary"]
    assert summary == {
        "drifted": 1,
        "unhealthy": 1,
        "errors": 0,
        "clean": 2,
        "paused": 0,
        "driftedAndUnhealthy": 1,
    }
    assert sum(v for k, v in summary.items() if k != "driftedAndUnhealthy") == 4
    text = render_drift_text(report)
    assert "Drift: 1 drifted (1 also unhealthy), 1 unhealthy, 0 unreadable, 2 clean." in text
    assert "errorCode PROVIDER_ERROR: 535 5.7.8 Authentication credentials invalid" in text
