"""The fleet views of a drift report: the CSV table and the HTML page (their
look in a browser: test_page_browser.py)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timezone
from html.parser import HTMLParser

from helpers import basic, live_basic, live_none, m365, spec

from reconciler.documents.drift import drift_document, drift_report_from_document
from reconciler.engine.drift import ConnectionCheck, DriftReport, TenantDrift, build_report
from reconciler.model import IgnoreRule, ReadFailure
from reconciler.report.fleet import COLUMNS, render_drift_csv
from reconciler.report.page import POLICY, render_drift_html

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>\u202e=cmd|' /C calc'!A0"
TODAY = date(2026, 6, 1)


def fleet() -> DriftReport:
    """Six tenants: clean, drifted (hostile sender), unhealthy, no config,
    unreadable, paused."""
    specs = [
        spec("acme", basic()),
        spec("beta", basic()),
        spec("gamma", basic()),
        spec("delta", m365()),
        spec("omega", basic()),
    ]
    live = {
        "acme": live_basic(),
        "beta": live_basic(senderName=HOSTILE, serverPort=2525),
        "gamma": live_basic(),
        "delta": live_none(),
        "omega": ReadFailure("could not reach omega: " + HOSTILE),
    }
    rules = [IgnoreRule("beta", "serverPort", "relay move", date(2026, 12, 31))]
    checks = {
        "acme": ConnectionCheck(True, "Connection verified"),
        "gamma": ConnectionCheck(False, "535 5.7.8 " + HOSTILE),
    }
    paused = [("zeta", "https://zeta.eu.qlikcloud.com", "key renewal, OPS-7 (until 2026-07-01)")]
    return build_report(specs, live, rules, TODAY, checks, paused=paused)


def test_csv_has_a_header_and_one_row_per_tenant() -> None:
    rows = list(csv.reader(io.StringIO(render_drift_csv(fleet()), newline="")))
    assert rows[0] == [header for _, header in COLUMNS]
    table = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert list(table) == ["acme", "beta", "delta", "gamma", "omega", "zeta"]
    acme = table["acme"]
    assert (acme["status"], acme["provider"], acme["smtpHost"], acme["smtpPort"]) == (
        "clean",
        "BasicAuth",
        "smtp.example.com",
        "587",
    )
    assert (acme["senderAddress"], acme["isValid"], acme["errorCode"]) == (
        "qlik@example.com",
        "true",
        "OK",
    )
    assert acme["authFailures"] == "0" and acme["verify"] == "ok"
    beta = table["beta"]
    assert beta["status"] == "drifted" and beta["smtpPort"] == "2525"
    assert beta["drift"].startswith('senderName: live "<img src=x')
    assert beta["ignored"] == "serverPort: relay move"
    assert table["gamma"]["verify"].startswith("failed: 535 5.7.8")
    assert table["gamma"]["status"] == "unhealthy"
    assert table["delta"]["provider"] == "none" and table["delta"]["drift"]
    assert table["omega"]["status"] == "error" and table["omega"]["error"]
    zeta = table["zeta"]
    assert (zeta["status"], zeta["paused"]) == ("paused", "key renewal, OPS-7 (until 2026-07-01)")
    assert zeta["provider"] == "" and zeta["drift"] == "" and zeta["error"] == ""


def test_csv_cells_are_text_for_a_spreadsheet() -> None:
    text = render_drift_csv(fleet())
    rows = list(csv.reader(io.StringIO(text, newline="")))
    sender = {row[0]: row[7] for row in rows[1:]}["beta"]
    assert sender.startswith("<img") and "\\u202e" in sender  # shown, not obeyed
    assert "\u202e" not in text
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert text.count("\r\n") == len(rows)  # one line per row: no line break in a cell


class _Page(HTMLParser):
    """What the page is made of: its elements, attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.rows: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]
        if tag == "tr" and dict(attrs).get("data-status"):
            self.rows.append(dict(attrs)["data-status"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_page_is_self_contained_and_escaped() -> None:
    page = render_drift_html(fleet(), now=datetime(2026, 6, 1, tzinfo=timezone.utc))
    parsed = _Page()
    parsed.feed(page)
    assert parsed.rows == ["clean", "drifted", "drifted", "unhealthy", "error", "paused"]
    assert parsed.tags.count("script") == 1 and "img" not in parsed.tags
    assert "iframe" not in parsed.tags and "link" not in parsed.tags
    # No external asset: nothing is loaded from anywhere, the policy allows nothing.
    assert not [v for n, v in parsed.attributes if n in ("src", "srcset", "action")]
    links = [v for n, v in parsed.attributes if n == "href"]
    names = ("acme", "beta", "delta", "gamma", "omega", "zeta")
    assert links == [f"https://{name}.eu.qlikcloud.com" for name in names]
    assert "default-src 'none'" in POLICY and f'content="{POLICY}"' in page
    assert "url(" not in page and "@import" not in page
    text = "".join(parsed.text)
    assert "<img src=x onerror=alert(1)>" in text  # the characters a person reads
    assert "\\u202e" in text and "\u202e" not in page
    assert "relay move" in text and "535 5.7.8" in text
    assert "2026-06-01 00:00 UTC" in text
    assert "paused: key renewal, OPS-7 (until 2026-07-01)" in text


def test_html_summary_counts() -> None:
    page = render_drift_html(fleet())
    counts = re.findall(r'<li class="count (\w+)">.*?<b>(\d+)</b>', page)
    assert counts == [("all", "6"), ("drifted", "2"), ("unhealthy", "1"), ("error", "1"),
                      ("clean", "1"), ("paused", "1")]  # fmt: skip
    unpaused = DriftReport(fleet().tenants[:-1], "sha256:0")
    assert "count paused" not in render_drift_html(unpaused)  # no card when none is paused


def test_a_link_is_made_only_of_a_web_address() -> None:
    hostile = TenantDrift("acme", "javascript:alert(1)", error="could not be read")
    page = render_drift_html(DriftReport((hostile,), "sha256:0"))
    assert "href" not in page.split("<tbody>")[1] and "javascript:alert(1)" in page


def test_json_keeps_what_the_fleet_views_need() -> None:
    report = fleet()
    again = drift_report_from_document(drift_document(report))
    assert render_drift_csv(again) == render_drift_csv(report)
    document = drift_document(report)
    for tenant in document["tenants"]:
        del tenant["live"], tenant["verify"]  # a report of an older version
    older = drift_report_from_document(document)
    assert older.fingerprint == report.fingerprint
    assert {t.live for t in older.tenants} == {None}
    assert render_drift_csv(older).count("\r\n") == 7
