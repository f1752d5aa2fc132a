"""Untrusted text, escaped for the output it lands in: the one door.

Every string that reaches a report comes from a file a pull request controls
(names, URLs, values) or from a tenant server (error titles, messages, live
values). Reports land in terminals, in job logs (where the GitHub Actions
runner obeys `::command::` lines) and in pull-request comments and issues
(Markdown, rendered to HTML). One function per output kind:

- `terminal`: control characters (C0, DEL, C1: so ANSI and OSC sequences, which
  start with ESC or CSI), line breaks and Unicode bidirectional and invisible
  format controls are shown as visible escapes (`\\x1b`, `\\n`, `\\u202e`), so a
  value can neither drive the terminal nor forge a line of its own;
- `markdown`: inline text for a table cell, a list item or a heading: the
  terminal escapes, then HTML and Markdown syntax escaped, no `<!--`, and every
  word holding an `@` (an address, a would-be `@mention`) as an inline code
  span, where GitHub never pings anyone and which copies as the plain word;
- `code_block`: a fenced block that no line of its body can close;
- `workflow_lines`: the last guard before a line is printed in a job log: a line
  that the runner would take as a workflow command is prefixed with `\\`.

JSON needs nothing: the encoder escapes what JSON must, and JSON documents are
data for programs, not text for people.
"""

from __future__ import annotations

import re

# C0 controls but tab, DEL, C1 controls; and the Unicode "format" characters that
# reorder or hide text: bidirectional embeddings, overrides and isolates, the
# zero-width and word-joiner family, the byte-order mark.
_CONTROL = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)
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
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: str) -> str:
    """`text` on one line, with every control or invisible format character shown
    as a visible escape."""
    return _CONTROL.sub(_visible, text)


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
