"""What the red-team suite asserts of every output: checks written independently
of `reconciler.scrub` and `reconciler.report.escape`, so that they test them."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import unicodedata
from html.parser import HTMLParser
from urllib.parse import quote, quote_plus

# Lines qlik-email itself writes as workflow commands.
OWN_COMMANDS = ("::add-mask::", "::error ")
_COMMAND = re.compile(r"^\s*(::|##\[)")
# Controls, bidirectional and other format characters, line and paragraph
# separators, tag characters (not the zero-width space, which follows an @ in
# Markdown to keep a mention from pinging).
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u061c\u200e\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\U000e0000-\U000e007f]"
)
_OWN_HTML = re.compile(r"</?(details|summary)>")
_HTML = re.compile(r"<[A-Za-z!/?]")
_MENTION = re.compile(r"(?<![\\\w])@[A-Za-z0-9]")
# An inline code span (opened by a backtick that is not escaped): GitHub
# renders it verbatim and never turns an @ inside it into a mention.
_CODE_SPAN = re.compile(r"(?<!\\)(`+)(?!`).*?(?<!`)\1(?!`)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def needles(secret: str) -> set[str]:
    """Spellings of `secret` (each long enough to mean something) that must appear nowhere."""
    raw = secret.encode()
    half = len(secret) // 2
    found = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        secret[:half],
        secret[half:],
    }
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        found.add(whole.rstrip("="))
        for prefix in (b"k", b"ke"):
            # The secret inside a larger blob: drop the characters its neighbours touch.
            found.add(encode(prefix + raw + b"tail").decode()[4:-8])
    if len(secret) >= 8:  # spellings a text is searched for once it is folded (`folded`)
        found |= {folded(secret), raw.hex()}
    return {n for n in found if len(n) >= 8}


_INVISIBLE = re.compile(
    "[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\U000e0000-\U000e007f]"
)
_ESCAPES = re.compile(r"\\u([0-9a-fA-F]{4})|&#([0-9]+);|&#[xX]([0-9a-fA-F]+);")


def _unescaped(match: re.Match[str]) -> str:
    code, decimal, hexa = match.groups()
    return chr(int(code or hexa, 16) if decimal is None else int(decimal))


def folded(text: str) -> str:
    """`text` with \\uXXXX escapes and numeric character references decoded,
    invisible characters and whitespace removed, NFKC, casefolded."""
    text = _INVISIBLE.sub("", _ESCAPES.sub(_unescaped, text))
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).casefold())


def leaks(text: str, secrets: list[str]) -> list[str]:
    """Which `secrets` appear in `text`, in any spelling, even with whitespace in it."""
    kept = "\n".join(
        line for line in text.split("\n") if not line.lstrip().startswith("::add-mask::")
    )
    compact = re.sub(r"\s+", "", kept)
    normal = folded(kept)
    found = []
    for secret in secrets:
        for needle in needles(secret):
            squeezed = re.sub(r"\s+", "", needle)
            if needle in kept or squeezed in compact or folded(needle) in normal:
                found.append(f"{secret[:4]}... as {needle[:12]!r}...")
                break
    return found


def forged_commands(text: str) -> list[str]:
    """Lines a GitHub Actions runner would obey that qlik-email did not mean to write."""
    return [
        line
        for line in text.split("\n")
        if _COMMAND.match(line) and not line.lstrip().startswith(OWN_COMMANDS)
    ]


def control_characters(text: str) -> list[str]:
    """Control and bidirectional characters other than newline and tab."""
    return sorted({f"U+{ord(c):04X}" for c in _CONTROL.findall(text)})


def markdown_problems(text: str) -> list[str]:
    """Raw HTML (but our own <details>), mentions, `<!--` and fences outside
    fenced blocks; and a fence left open at the end."""
    problems = []
    fence: str | None = None
    for number, line in enumerate(text.split("\n"), 1):
        match = _FENCE.match(line)
        if fence is not None:
            closing = match is not None and line.strip() == match.group(1)
            if closing and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            continue
        if match is not None:
            fence = match.group(1)
            continue
        outside = _OWN_HTML.sub("", line)
        for what, pattern in (("HTML", _HTML), ("mention", _MENTION)):
            if pattern.search(_CODE_SPAN.sub("", outside) if what == "mention" else outside):
                problems.append(f"line {number}: {what}: {line[:80]!r}")
        if "<!--" in line:
            problems.append(f"line {number}: comment: {line[:80]!r}")
    if fence is not None:
        problems.append("a fenced block is never closed")
    return problems


# The elements and attributes the fleet page is made of; anything else came
# from the data.
_PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "p", "code", "ul",
    "li", "button", "b", "span", "main", "div", "input", "select", "option", "table",
    "thead", "tbody", "tr", "th", "td", "a", "script", "br",
}  # fmt: skip
_PAGE_ATTRIBUTES = {
    "lang", "charset", "http-equiv", "content", "name", "class", "type", "data-status",
    "disabled", "aria-label", "id", "hidden", "placeholder", "value", "aria-live", "scope",
    "data-type", "data-sort", "href", "rel",
}  # fmt: skip


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        if tag not in _PAGE_TAGS:
            self.found.append(f"element <{tag}>")
        for name, value in attrs:
            if name not in _PAGE_ATTRIBUTES:
                self.found.append(f"attribute {name}= on <{tag}>")
            elif name == "href" and not (value or "").startswith(("https://", "http://")):
                self.found.append(f"link to {value!r}")

    def handle_comment(self, data: str) -> None:
        self.found.append("comment")


def html_problems(text: str) -> list[str]:
    """Markup in the fleet page that the page itself does not make: elements,
    attributes (`on...` handlers), links that are not web addresses, a second
    script, comments; and control or bidirectional characters."""
    parser = _Elements()
    parser.feed(text)
    parser.close()
    found = parser.found + control_characters(text)
    if parser.scripts != 1:
        found.append(f"{parser.scripts} scripts")
    return found


def csv_problems(text: str) -> list[str]:
    """CSV cells a spreadsheet would run as a formula, and rows of another width."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    width = len(rows[0]) if rows else 0
    found = [f"row {n}: {len(row)} cells" for n, row in enumerate(rows, 1) if len(row) != width]
    for number, row in enumerate(rows, 1):
        found += [
            f"row {number}: {cell[:40]!r}" for cell in row if cell[:1] in ("=", "+", "-", "@")
        ]
    return found + control_characters(text.replace("\r\n", "\n"))
