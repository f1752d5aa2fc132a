"""Untrusted text, escaped for the output it lands in: the one door.

Every string that reaches a report comes from a file a pull request controls
(names, URLs, values) or from a tenant server (error titles, messages, live
values). Reports land in terminals, in job logs (where the GitHub Actions
runner obeys `::command::` lines) and in pull-request comments and issues
(Markdown, rendered to HTML). One function per output kind:

- `terminal`: control characters (C0, DEL, C1: so ANSI and OSC sequences, which
  start with ESC or CSI), line breaks (U+2028 and U+2029 too) and every
  Unicode format character (bidirectional controls, zero-width characters,
  the soft hyphen, tag characters: INVISIBLE) are shown as visible escapes
  (`\\x1b`, `\\n`, `\\u202e`, `\\U000e0041`), so a value can neither drive the
  terminal, forge a line of its own, nor hide or reorder text;
- `markdown`: inline text for a table cell, a list item or a heading: the
  terminal escapes, then HTML and Markdown syntax escaped, no `<!--`, and every
  word holding an `@` (an address, a would-be `@mention`) as an inline code
  span, where GitHub never pings anyone and which copies as the plain word;
- `code_block`: a fenced block that no line of its body can close;
- `workflow_lines`: the last guard before a line is printed in a job log: a line
  that the runner would take as a workflow command is prefixed with `\\`.
- `html`: text for an HTML element or a quoted attribute value (the fleet page):
  the terminal escapes, so invisible characters are seen, then `html.escape`;
- `csv_cell`: a CSV cell for a spreadsheet: the terminal escapes, and a cell
  that a spreadsheet would take as a formula (`=`, `+`, `-`, `@`) starts with `'`;
- `json_text`: a JSON document with every INVISIBLE character written as a
  `\\uXXXX` escape (JSON's encoder escapes C0 controls only, when it keeps
  UTF-8): JSON documents are data for programs, but people read them too.
"""

from __future__ import annotations

import html as _html
import re

# Every character that is invisible or moves text, by Unicode category: the
# controls (Cc), the line and paragraph separators (Zl, Zp) and the format
# characters (Cf: bidirectional embeddings, overrides, isolates and marks, the
# zero-width and word-joiner family, the soft hyphen, the byte-order mark,
# interlinear annotations, the tag characters U+E0000-U+E007F and the rest).
# Written out rather than derived from `unicodedata` at import (a walk of every
# code point); tests/report/test_escape.py checks it covers every Cc, Cf, Zl and
# Zp character of the running Python's Unicode, and the ranges reach past
# Unicode 14's to the blocks where later versions added format characters.
_BEYOND_C0 = (
    "\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2"
    "\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f"
)
INVISIBLE = re.compile(f"[\x00-\x1f{_BEYOND_C0}]")
# What `terminal` shows: all of INVISIBLE but tab.
_CONTROL = re.compile(f"[\x00-\x08\x0a-\x1f{_BEYOND_C0}]")
# What `json_text` escapes: C0 controls are JSON's own business (its encoder
# escapes them inside strings, and whitespace between tokens is one of them).
_JSON_INVISIBLE = re.compile(f"[{_BEYOND_C0}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}
# What the runner parses as a command once a line is trimmed: `::name ...::`
# and the older `##[name]`.
_COMMAND_START = re.compile(r"^\s*(::|##\[)")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
# An address or a would-be mention: letters, digits and `. _ % + -` around an
# @ followed by a letter or digit, ending in a letter or digit. It holds nothing
# that needs escaping inside a code span (no backtick, no `|`) or outside one.
_AT_WORD = re.compile(r"[\w.%+\-]*@[A-Za-z0-9](?:[\w.\-]*\w)?")
_BACKTICKS = re.compile(r"`+")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON writes a character beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def terminal(text: str) -> str:
    """`text` on one line, with every control or invisible format character shown
    as a visible escape."""
    # Printable ASCII holds none of them (tab, which stays, is not printable),
    # and is told in C far faster than the pattern's ranges are walked.
    if text.isascii() and text.isprintable():
        return text
    return _CONTROL.sub(_visible, text)


def json_text(document: str, keep: str = "") -> str:
    """A JSON `document` (as `json.dumps` writes it) with every INVISIBLE
    character but the C0 controls (and those in `keep`) written as a `\\uXXXX`
    escape: the same JSON value, and nothing hidden or reordered for whoever
    reads it."""
    if document.isascii() and "\x7f" not in document:
        return document  # every INVISIBLE character but DEL is beyond ASCII
    if not keep:
        return _JSON_INVISIBLE.sub(_json_escape, document)
    return _JSON_INVISIBLE.sub(
        lambda match: match.group() if match.group() in keep else _json_escape(match), document
    )


def markdown(text: str) -> str:
    """`text` as inline Markdown that renders as the same characters: no HTML,
    no formatting, no links, no mention that pings anyone, on one line."""
    text = terminal(text)
    parts: list[str] = []
    start = 0
    for match in _AT_WORD.finditer(text):
        parts += [_markdown_plain(text[start : match.start()]), f"`{match.group()}`"]
        start = match.end()
    return "".join([*parts, _markdown_plain(text[start:])])


def _markdown_plain(text: str) -> str:
    """Text with no @-word, HTML and Markdown syntax escaped."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def code_block(body: str, info: str = "") -> str:
    """A fenced code block holding `body` (one escaped line per line of it), with
    a fence longer than any run of backticks inside, so that no line can close it."""
    lines = [terminal(line) for line in body.split("\n")]
    longest = max((len(run) for run in _BACKTICKS.findall(body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n" + "\n".join(lines) + f"\n{fence}\n"


def workflow_lines(text: str) -> str:
    """`text` with every line that a GitHub Actions runner would obey as a workflow
    command (`::...`, `##[...]`, after leading whitespace) prefixed with `\\`."""
    if "::" not in text and "##[" not in text:
        return text
    return "\n".join(
        "\\" + line if _COMMAND_START.match(line) else line for line in text.split("\n")
    )


def html(text: str) -> str:
    """`text` for the body of an HTML element or a quoted attribute value: shown
    as the same characters, never as markup (`<`, `>`, `&`, both quotes escaped),
    with control and invisible format characters written as visible escapes."""
    return _html.escape(terminal(text), quote=True)


# What a spreadsheet takes as the start of a formula (OWASP "CSV injection"); a
# carriage return is shown as an escape already, a tab is kept.
_FORMULA_START = ("=", "+", "-", "@", "\t")


def csv_cell(text: str) -> str:
    """`text` for a CSV cell that a spreadsheet shows as text: on one line, with
    control and invisible characters as visible escapes, and a leading `'` when
    it would otherwise be read as a formula. (Quoting is the csv module's job.)"""
    text = terminal(text)
    return "'" + text if text.startswith(_FORMULA_START) else text
