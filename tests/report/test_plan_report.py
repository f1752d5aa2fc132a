import json
import re
from datetime import date
from pathlib import Path

import jsonschema
from helpers import basic, live_basic, live_none, m365, spec

from reconciler.documents.plan import plan_document
from reconciler.engine.planner import make_plan
from reconciler.model import ReadFailure
from reconciler.report.plan import render_plan_markdown, render_plan_text
from reconciler.report.style import MARKDOWN_LIMIT

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "plan.schema.json").read_text())


def sample_plan():
    tenants = [
        spec("create-me", basic()),
        spec("update-me", basic(serverPort=465)),
        spec("switch-me", m365()),
        spec("delete-me", None),
        spec("same", basic()),
    ]
    live = {
        "create-me": live_none(),
        "update-me": live_basic(),
        "switch-me": live_basic(),
        "delete-me": live_basic(),
        "same": live_basic(),
    }
    return make_plan(tenants, live)


def test_text_plan_has_terraform_symbols_and_summary():
    text = render_plan_text(sample_plan())
    assert '  + tenant "create-me" {' in text
    assert '  ~ tenant "update-me" {' in text
    assert '-/+ tenant "switch-me" {' in text
    assert '  - tenant "delete-me" {' in text
    assert "~ serverPort = 587 -> 465" in text
    assert "password      = (sensitive value)" in text
    assert "Plan: 1 to create, 2 to update, 1 to delete, 1 unchanged." in text
    assert "\x1b[" not in text


def test_text_plan_colours_only_when_asked():
    assert "\x1b[32m" in render_plan_text(sample_plan(), color=True)


def test_no_changes_message():
    result = make_plan([spec("same", basic())], {"same": live_basic()})
    text = render_plan_text(result)
    assert text.startswith("No changes.")
    assert "Plan: 0 to create, 0 to update, 0 to delete, 1 unchanged." in text


def test_read_errors_are_listed():
    result = make_plan(
        [spec("gone", basic())], {"gone": ReadFailure("could not reach https://gone: refused")}
    )
    text = render_plan_text(result)
    assert "xx gone (https://gone.eu.qlikcloud.com): could not be read: could not reach" in text
    assert "1 tenant(s) could not be read." in text


def test_json_plan_validates_against_schema():
    document = plan_document(sample_plan())
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document["summary"] == {
        "create": 1,
        "update": 1,
        "replace": 1,
        "delete": 1,
        "unchanged": 1,
        "errors": 0,
        "notRead": 0,
        "paused": 0,
        "noLongerManaged": 0,
    }


def test_json_plan_never_records_sensitive_values():
    document = plan_document(sample_plan())
    sensitive = [c for t in document["tenants"] for c in t["changes"] if c["sensitive"]]
    assert sensitive
    assert all(c["before"] is None and c["after"] is None for c in sensitive)


def test_markdown_plan_has_summary_table_and_details():
    text = render_plan_markdown(sample_plan())
    assert text.startswith("## qlik-email plan")
    assert "| `~` | update-me | update | serverPort |" in text
    assert "<details><summary>switch-me: replace</summary>" in text


def test_markdown_stays_under_comment_limit_for_2000_tenants():
    tenants = [spec(f"tenant-{i:05d}", basic(senderName=f"S{i}" * 20)) for i in range(2000)]
    result = make_plan(tenants, {t.name: live_none() for t in tenants})
    text = render_plan_markdown(result)
    assert len(text) <= MARKDOWN_LIMIT < 65_536
    assert "more tenant(s) not shown" in text
    assert "Plan: 2000 to create" in text
    # the table, then the details: what is shown and what is said to be left out add up
    table_left, details_left = (
        int(n) for n in re.findall(r"_(\d+) more tenant\(s\) not shown", text)
    )
    assert text.count("| `+` |") + table_left == 2000
    assert text.count("<details>") + details_left == 2000
    assert 0 < table_left < 2000 and 0 < details_left < 2000


def test_drift_markdown_stays_under_comment_limit_for_2000_tenants():
    from reconciler.engine.drift import build_report
    from reconciler.report.drift import render_drift_markdown

    tenants = [spec(f"tenant-{i:05d}", basic(senderName=f"S{i}" * 20)) for i in range(2000)]
    live = {t.name: live_basic(senderName=f"Edited {i}" * 10) for i, t in enumerate(tenants)}
    text = render_drift_markdown(build_report(tenants, live, [], date(2026, 11, 22)))
    assert len(text) <= MARKDOWN_LIMIT < 65_536
    assert "Drift: 2000 drifted" in text
    assert "more tenant(s) not shown" in text


def test_apply_markdown_stays_under_comment_limit_for_2000_tenants():
    from reconciler.engine.applier import ApplyReport, Outcome, TenantResult
    from reconciler.model import Action
    from reconciler.report.apply import render_apply_markdown

    results = tuple(
        TenantResult(
            f"tenant-{i:05d}",
            f"https://tenant-{i:05d}.eu.qlikcloud.com",
            Action.UPDATE,
            Outcome.FAILED if i % 2 else Outcome.APPLIED,
            message=f"PUT rejected by tenant-{i:05d}: 535 authentication failed " * 3,
        )
        for i in range(2000)
    )
    text = render_apply_markdown(ApplyReport(results))
    assert len(text) <= MARKDOWN_LIMIT < 65_536
    assert "Apply: 1000 applied, 0 verify failed, 1000 failed" in text
    assert "more tenant(s) not shown" in text
    # Failures come first, so the ones that need attention are the ones shown.
    shown = text.split("| tenant |", 1)[1]
    assert ":x:" in shown.splitlines()[2]
