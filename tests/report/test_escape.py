"""Untrusted text through `report.escape` and the renderers: no terminal control
sequence, no workflow command, no raw HTML, no closable fence, no mention."""

from __future__ import annotations

import json
import re
import sys
import unicodedata

from helpers import basic, live_basic, spec
from hypothesis import given
from hypothesis import strategies as st

from reconciler.engine.applier import ApplyReport, Outcome, TenantResult
from reconciler.engine.drift import TenantDrift, build_report
from reconciler.engine.planner import make_plan
from reconciler.model import Action, ReadFailure
from reconciler.report import escape
from reconciler.report.apply import render_apply_markdown, render_apply_text
from reconciler.report.drift import render_drift_markdown, render_drift_text
from reconciler.report.plan import render_plan_markdown, render_plan_text

HOSTILE = (
    "x\n::error file=a::forged\n```\nPlan: 0 to create\n<img src=x onerror=alert(1)>"
    " @octocat <!-- \x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b1m \u202eevil"
)
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_terminal_shows_every_control_character_visibly() -> None:
    shown = escape.terminal(HOSTILE)
    assert "\n" not in shown and not CONTROL.search(shown)
    assert "\\x1b]52;c;" in shown and "\\u202e" in shown and "\\n::error" in shown
    assert escape.terminal("tab\tstays") == "tab\tstays"


# Invisible characters a server may put in a senderName: the soft hyphen, line and
# paragraph separators, bidirectional controls, zero-width and tag characters.
INVISIBLE = (
    "\xad\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\u200b\u200d\u2060\ufeff\U000e0001\U000e0041\U000e007f\u0600\U0001d173"
)


def _invisible_code_points() -> list[int]:
    """Every control, format, line or paragraph separator character of this Python's Unicode."""
    return [
        code
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp")
    ]


def test_the_invisible_set_covers_every_control_and_format_character() -> None:
    missing = [hex(c) for c in _invisible_code_points() if not escape.INVISIBLE.match(chr(c))]
    assert not missing


def test_every_invisible_character_is_shown_as_an_escape_in_every_kind() -> None:
    text = "Acme" + INVISIBLE + "::warning::forged"
    shown = {"terminal": escape.terminal(text), "markdown": escape.markdown(text)}
    for kind, value in shown.items():
        assert not escape.INVISIBLE.search(value.replace("\t", "")), kind
        value = value.replace("\\\\", "\\")  # Markdown escapes the escapes' backslash
        assert "\\xad\\u2028\\u2029\\u202a" in value, kind
        assert "\\U000e0041" in value, kind
    for code in _invisible_code_points():
        if code != 9:
            assert escape.terminal(chr(code)) != chr(code), hex(code)


def test_json_text_escapes_invisible_characters_and_keeps_the_value() -> None:
    document = json.dumps({"senderName": "Acme" + INVISIBLE, "n": "\u00e9\t"}, ensure_ascii=False)
    shown = escape.json_text(document)
    assert json.loads(shown) == json.loads(document)
    assert not escape.INVISIBLE.search(shown.replace("\n", "").replace("\t", ""))
    assert "\\u2028" in shown and "\\udb40\\udc41" in shown and "\u00e9" in shown
    assert escape.json_text('"a\u200bb\u202e"', keep="\u200b") == '"a\u200bb\\u202e"'


def test_markdown_renders_as_plain_text() -> None:
    shown = escape.markdown(HOSTILE)
    assert "<" not in shown and ">" not in shown and "\n" not in shown
    assert "`@octocat`" in shown and "\u200b" not in shown
    assert "\\`\\`\\`" in shown  # no fence can open or close


def test_an_address_is_a_code_span_that_copies_as_itself() -> None:
    assert escape.markdown("qlik@acme.example") == "`qlik@acme.example`"
    assert escape.markdown("From: Ops <ops@acme.example>, cc @team|x") == (
        "From: Ops &lt;`ops@acme.example`&gt;, cc `@team`\\|x"
    )
    assert escape.markdown("a`@x") == "a\\``@x`"
    assert escape.markdown("user@ (no mention)") == "user@ (no mention)"


def test_a_code_block_cannot_be_closed_from_inside() -> None:
    block = escape.code_block("a\n````\nb", "diff")
    fence = block.split("\n", 1)[0]
    assert fence == "`````diff"
    assert block.rstrip("\n").endswith("`````")
    assert block.count("`````") == 2


def test_html_is_text_and_shows_invisible_characters() -> None:
    shown = escape.html(HOSTILE + " \" ' & \u200b")
    assert "<" not in shown and ">" not in shown and '"' not in shown and "'" not in shown
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown and "&amp;" in shown
    assert "&quot;" in shown and "&#x27;" in shown
    assert "\\u202e" in shown and "\\u200b" in shown and "\\x1b" in shown
    assert not CONTROL.search(shown) and "\n" not in shown
    assert escape.html("plain tenant-001") == "plain tenant-001"


def test_a_csv_cell_is_never_a_formula() -> None:
    for formula in ('=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx"):
        assert escape.csv_cell(formula) == "'" + formula
    assert escape.csv_cell("a=b") == "a=b" and escape.csv_cell("587") == "587"
    assert escape.csv_cell("\rx\u202e") == "\\rx\\u202e"  # shown, not obeyed


def test_workflow_lines_never_start_a_command() -> None:
    text = "ok\n::error::x\n   ::stop-commands::t\n##[warning]y\nfine :: here"
    guarded = escape.workflow_lines(text).split("\n")
    assert guarded == [
        "ok",
        "\\::error::x",
        "\\   ::stop-commands::t",
        "\\##[warning]y",
        "fine :: here",
    ]


def _assert_safe_text(text: str) -> None:
    assert not CONTROL.search(text.replace("\n", ""))
    for line in escape.workflow_lines(text).split("\n"):
        assert not re.match(r"\s*(::|##\[)", line)


def _outside_code_blocks(markdown: str) -> str:
    """The Markdown that GitHub renders as Markdown: fenced blocks removed, each
    closed only by a fence at least as long as the one that opened it."""
    kept, fence = [], None
    for line in markdown.split("\n"):
        run = re.match(r"`{3,}", line)
        if fence is None and run:
            fence = run.group()
        elif fence is not None and line.strip() and set(line.strip()) == {"`"}:
            if len(line.strip()) >= len(fence):
                fence = None
        elif fence is None:
            kept.append(line)
    assert fence is None, "a code block is left open"
    return "\n".join(kept)


def _assert_safe_markdown(markdown: str) -> None:
    rendered = _outside_code_blocks(markdown)
    assert "<img" not in rendered and "<!--" not in rendered
    # GitHub leaves an @ inside an inline code span alone.
    assert "@octocat" not in re.sub(r"(?<!\\)`[^`]*`", "", rendered)
    assert not CONTROL.search(markdown.replace("\n", ""))
    assert "\nPlan: 0 to create" not in markdown


def test_hostile_server_text_in_every_report() -> None:
    tenants = [spec("acme", basic(senderName=HOSTILE)), spec("beta", basic())]
    plan = make_plan(tenants, {"acme": live_basic(), "beta": ReadFailure(HOSTILE)})
    report = ApplyReport(
        (TenantResult("acme", "https://acme", Action.UPDATE, Outcome.VERIFY_FAILED, HOSTILE),)
    )
    drift = build_report(
        tenants, {"acme": live_basic(), "beta": ReadFailure(HOSTILE)}, [], _today()
    )
    for text in (
        render_plan_text(plan, color=True),
        render_apply_text(report, color=True),
        render_drift_text(drift, color=True),
    ):
        # Only the report's own colours remain as escape sequences.
        _assert_safe_text(re.sub(r"\x1b\[[0-9]+m", "", text))
    for markdown in (
        render_plan_markdown(plan),
        render_apply_markdown(report),
        render_drift_markdown(drift),
    ):
        _assert_safe_markdown(markdown)
    assert isinstance(drift.tenants[1], TenantDrift) and drift.tenants[1].error


def _today():  # type: ignore[no-untyped-def]
    from datetime import date

    return date(2026, 1, 1)


@given(st.text(alphabet=st.characters(max_codepoint=0x250)) | st.text())
def test_the_ascii_shortcuts_escape_as_the_patterns_do(text: str) -> None:
    """`terminal` and `json_text` skip their pattern for printable ASCII: the
    result is the one the pattern gives, for any text."""
    assert escape.terminal(text) == escape._CONTROL.sub(escape._visible, text)
    document = json.dumps({"value": text}, ensure_ascii=False)
    assert escape.json_text(document) == escape._JSON_INVISIBLE.sub(escape._json_escape, document)
    for ascii_text in (text.encode("ascii", "replace").decode(), "a\x7fb", "a\tb\x1bc"):
        assert escape.terminal(ascii_text) == escape._CONTROL.sub(escape._visible, ascii_text)
        assert escape.json_text(ascii_text) == escape._JSON_INVISIBLE.sub(
            escape._json_escape, ascii_text
        )
