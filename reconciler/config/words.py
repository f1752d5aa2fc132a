"""Small helpers that phrase configuration messages consistently."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence
from typing import Any

from reconciler.config.quote import quoted, shown
from reconciler.config.source import JsonPath

# Keys whose value is a secret reference: their values never appear in a message.
SECRET_KEYS = frozenset({"password", "clientSecret", "apiKey"})
# Slips that difflib does not catch, mapped to what was meant.
_SYNONYMS = {
    "ssl": "SSL/TLS",
    "tls": "SSL/TLS",
    "ssl/tls": "SSL/TLS",
    "smtps": "SSL/TLS",
    "starttls": "StartTLS",
    "start_tls": "StartTLS",
    "start-tls": "StartTLS",
    "basic": "BasicAuth",
    "smtp": "BasicAuth",
    "m365": "Microsoft365",
    "o365": "Microsoft365",
    "microsoft 365": "Microsoft365",
    "office365": "Microsoft365",
}


# Cached: every tenant file's checks name the same few paths in their labels.
@functools.lru_cache(maxsize=256)
def path_text(path: JsonPath) -> str:
    """`('drift', 'ignore', 0, 'reason')` -> `drift.ignore[0].reason`; keys made safe
    by `shown`, since a key is written by the user."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{shown(step)}" if text else shown(step)
    return text


def describe(value: Any, raw: str | None = None, *, secret: bool = False) -> str:
    """What a value is, for "got ..." phrases; only its type when it may be a secret."""
    if value is None:
        return "an empty value"
    kind = _kind(value)
    if secret or isinstance(value, (dict, list)):
        return kind
    if not isinstance(value, str):
        return f"{kind} {shown(raw if raw is not None else value)}"
    return f"{kind} {quoted(value)}"


def kind_of(value: Any) -> str:
    """What kind of value `value` is, with an article ("a string"), never the value."""
    if value is None:
        return "an empty value"
    kind = _kind(value)
    return kind if kind.startswith("a ") else f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "a mapping" if isinstance(value, dict) else "a list"


def suggest(word: str, choices: Sequence[str]) -> str | None:
    """The choice `word` was probably meant to be, or None."""
    folded = word.strip().casefold()
    for choice in choices:
        if choice.casefold() == folded:
            return choice
    synonym = _SYNONYMS.get(folded)
    if synonym in choices:
        return synonym
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        by_case = {choice.casefold(): choice for choice in choices}
        close = [by_case[m] for m in difflib.get_close_matches(folded, list(by_case), n=1)]
    return close[0] if close else None
