"""Small helpers shared by the renderers: colour, value quoting, JSON, limits."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring
from typing import Any, TypeVar

import orjson

from reconciler.report import escape
from reconciler.secrets import REDACTED

T = TypeVar("T")

# GitHub refuses comments over 65,536 characters; keep a margin for the wrapper.
MARKDOWN_LIMIT = 60_000

_COLOURS = {"green": "32", "yellow": "33", "red": "31", "bold": "1", "cyan": "36", "dim": "2"}


class Painter:
    """Wraps a line in ANSI colours when enabled (a TTY without NO_COLOR). The
    line is escaped first (`escape.terminal`): the only escape sequences in a
    text report are these colours."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, colour: str | None = None) -> str:
        text = escape.terminal(text)
        if not self.enabled or colour is None:
            return text
        return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"


def show(value: object, sensitive: bool = False) -> str:
    """A value as the text report shows it: strings quoted, absent as null."""
    if sensitive:
        return REDACTED
    if value is None:
        return "null"
    if isinstance(value, str):
        return encode_basestring(
            value
        )  # json.dumps(value, ensure_ascii=False) without its overhead
    return str(value)


def unreadable_line(tenant: str, url: str, error: str) -> str:
    """How every text report names a tenant that could not be read."""
    return f"xx {tenant} ({url}): could not be read: {error}"


def paused_line(tenant: str, url: str, pause: str) -> str:
    """How every text report names a tenant paused in its file (`pause`: its
    reason and end)."""
    return f"|| {tenant} ({url}): paused: {pause}"


def md_cell(text: str) -> str:
    """Untrusted text for a Markdown table cell or list item (`escape.markdown`)."""
    return escape.markdown(text)


def dumps(document: dict[str, Any]) -> str:
    """JSON text for a document (stable key order as built, UTF-8 kept, but
    invisible characters escaped: `escape.json_text`)."""
    return escape.json_text(indented_json(document)) + "\n"


# Every type a document holds is written by orjson as json writes it; anything
# else (a dataclass, a date) is left to json, which refuses it as before.
_ORJSON = orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def indented_json(document: Any) -> str:
    """`json.dumps(document, indent=2, ensure_ascii=False)`: the same text, written
    by orjson (bench/NOTES.md, "JSON documents"), or by json for what orjson does
    not write (an integer beyond 64 bits, a key that is not a string). Two
    differences, neither in a document the tool writes today (its one float is
    a duration in seconds, to the millisecond): a float that json writes with an exponent
    (below 1e-4 or from 1e16) may be written otherwise, the same number; NaN
    and the infinities, which json writes as invalid JSON, are null."""
    try:
        return orjson.dumps(document, option=_ORJSON).decode()
    except TypeError:
        return json.dumps(document, indent=2, ensure_ascii=False)


def truncate_markdown(
    head: str, items: Sequence[T], render: Callable[[T], str], tail: str, limit: int
) -> str:
    """Join `head`, as many of `items` as fit, each rendered, and `tail`, under
    `limit` characters, with a note saying how many were left out. An item is
    rendered only when it is reached: a fleet's report has thousands, of which
    a comment holds a few hundred."""
    budget = limit - len(head) - len(tail) - 200
    kept: list[str] = []
    used = 0
    for item in items:
        section = render(item)
        if used + len(section) > budget:
            break
        kept.append(section)
        used += len(section)
    omitted = len(items) - len(kept)
    note = (
        f"\n_{omitted} more tenant(s) not shown: the comment limit was reached. "
        "See the job summary or the JSON report for the full list._\n"
        if omitted
        else ""
    )
    return head + "".join(kept) + note + tail
