"""Reading a JSON file this run did not write: bounded before it is parsed.

Saved plans (`show`, `apply PLAN.json`), reports (`report merge`) and the
applied-state file (`--state`) come from earlier runs, other machines or a
pull request, so they are hostile input like any other. Python's `json`
recurses once per level of nesting (a deep file is a RecursionError, here or in
whatever walks the value later) and turns every integer into an `int` (a
5,000-digit one is a ValueError). So before `json.loads` sees the text:

- the file may hold at most MAX_BYTES (a plan of 100,000 tenants is well under);
- outside strings, no run of number characters may be longer than MAX_NUMBER;
- brackets may nest at most MAX_DEPTH levels (our documents nest six).

Both scans run at C speed (`re`, `bytes.replace`): the cost of a refusal is a
few passes over the file, whatever it holds. A refusal is a `JsonRefused`
(a ValueError), which the callers report with the file's name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MAX_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 32
MAX_NUMBER = 100

# A string, escapes and all; one that never ends runs to the end of the text,
# so that no quote is scanned twice.
_STRING = re.compile(rb'"[^"\\]*(?:\\[\s\S][^"\\]*)*(?:"|\\?\Z)')
_LONG_NUMBER = re.compile(rb"[-+.0-9eE]{%d,}" % (MAX_NUMBER + 1))
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


class JsonRefused(ValueError):
    """A JSON file over one of the bounds: not parsed."""


def read_json(path: Path) -> Any:
    """The JSON document in `path`, refused (JsonRefused) when it is over a bound.
    Raises OSError, UnicodeDecodeError, or ValueError (JSONDecodeError) too."""
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise JsonRefused(f"larger than {MAX_BYTES // (1024 * 1024)} MiB: not read")
    return parse_bounded(data)


def parse_bounded(data: bytes) -> Any:
    """`json.loads(data)` once `data` is known to be within the bounds above."""
    structure = _STRING.sub(b'""', data)
    if _LONG_NUMBER.search(structure):
        raise JsonRefused(f"holds a number longer than {MAX_NUMBER} characters: not parsed")
    if _too_deep(structure.translate(_ONE_KIND, _NOT_BRACKETS)):
        raise JsonRefused(f"nested deeper than {MAX_DEPTH} levels: not parsed")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise JsonRefused(f"nested deeper than {MAX_DEPTH} levels: not parsed") from None


def _too_deep(brackets: bytes) -> bool:
    """Whether `brackets` (only `[` and `]`) open more than MAX_DEPTH levels.

    Each pass takes out every innermost pair, one level of nesting; what is
    left after MAX_DEPTH passes is deeper nesting, or openers never closed
    (the file is cut short, or hostile): more than MAX_DEPTH of those would
    make the parser recurse as deep."""
    for _ in range(MAX_DEPTH):
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets = shorter
    return b"[]" in brackets or brackets.count(b"[") > MAX_DEPTH
