"""What the red-team suite asserts of every output: checks written independently
of `reconciler.scrub` and `reconciler.report.escape`, so that they test them."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

# Lines qlik-email itself writes as workflow commands.
OWN_COMMANDS = ("::add-mask::", "::error ")
_COMMAND = re.compile(r"^\s*(::|##\[)")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
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
    return {n for n in found if len(n) >= 8}


def leaks(text: str, secrets: list[str]) -> list[str]:
    """Which `secrets` appear in `text`, in any spelling, even with whitespace in it."""
    kept = "\n".join(
        line for line in text.split("\n") if not line.lstrip().startswith("::add-mask::")
    )
    compact = re.sub(r"\s+", "", kept)
    found = []
    for secret in secrets:
        for needle in needles(secret):
            if needle in kept or re.sub(r"\s+", "", needle) in compact:
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
