"""The one way configuration messages quote what a user wrote.

Every value, key or file name a message quotes comes from a file that may be
hostile (a pull request controls it) and goes through `shown`: bounded in
length, and with every character that is not printable written as a visible
escape, so that a message is one line that cannot forge another line, start a
GitHub Actions workflow command (`::error`, `::stop-commands`) or move the
terminal's cursor (ANSI/OSC sequences, Unicode bidi controls).
"""

from __future__ import annotations

# The most characters of one value a message quotes (escapes and "..." included).
MAX_QUOTED = 60
_ELLIPSIS = "..."
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(value: object, limit: int | None = MAX_QUOTED) -> str:
    """`value` as text safe to put in a one-line message: characters that are not
    printable (C0/C1 controls, ESC, DEL, bidi and other format characters, line
    and paragraph separators) become visible escapes (`\\n`, `\\x1b`, `\\u202e`),
    and the result is cut to `limit` characters, ending in "...", when longer."""
    text = str(value)
    if text.isprintable() and (limit is None or len(text) <= limit):
        return text  # the common case, without a call per character
    pieces = [_escape(char) for char in text]
    if limit is None or sum(map(len, pieces)) <= limit:
        return "".join(pieces)
    kept: list[str] = []
    size = len(_ELLIPSIS)
    for piece in pieces:  # never cut an escape in two
        if size + len(piece) > limit:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + _ELLIPSIS


def quoted(value: object, limit: int | None = MAX_QUOTED) -> str:
    """`value` in single quotes, made safe and bounded by `shown`."""
    return f"'{shown(value, limit)}'"


def _escape(char: str) -> str:
    if char.isprintable():
        return char
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
