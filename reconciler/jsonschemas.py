"""Access to the JSON Schemas shipped in `schemas/`, compiled once each.

Two validators per schema: `conforms` answers "is this document valid?" with
jsonschema-rs (Rust, many times faster: bench/NOTES.md), and only
when the answer is not yes does a caller ask `validator` (jsonschema) for the
errors, whose wording the messages are built from. So a valid run never imports
jsonschema (a slow import), and every message is jsonschema's as before.

The two must agree on what is valid (tests/config/test_schema_agreement.py).
Where they read a schema differently, the difference is removed here:

- `pattern`: jsonschema applies Python's `re.search`; jsonschema-rs follows
  ECMA 262, where `$` does not match before a final newline, `.` does not
  match `\\r` or U+2028, and `\\s` is another set of characters (U+FEFF in,
  U+001C-U+001F and U+0085 out, so `\\S` would accept a `reason` of "\\x85"
  that jsonschema refuses). Both are given the keyword in one dialect
  (`pattern_search`): Python's, but for `$`, which ends the text as in ECMA
  262 and in the editors that read the schemas (Python's `$` let
  `name: "acme\\n"` through).
- `format` is an annotation to both (jsonschema is given no format checker,
  jsonschema-rs `validate_formats=False`): neither checks e-mail addresses or
  dates; the semantic checks do.
- What is no JSON (a lone surrogate from a YAML escape such as "\\ud800", `.inf`,
  a key that is not a string) jsonschema-rs may refuse where jsonschema does
  not, or raise on: either way the document goes to jsonschema, which decides.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema_rs

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def load_schema(name: str) -> dict[str, Any]:
    """The schema document `name` (e.g. "plan.schema.json")."""
    data: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return data


@functools.cache
def pattern_search(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """`re.compile(pattern).search`, with every `$` outside a character class
    and not escaped meaning the end of the text (`\\Z`), as in ECMA 262."""
    parts: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = "\\Z"
        parts.append(char)
    return re.compile("".join(parts)).search


@functools.cache
def draft_validator() -> Any:
    """jsonschema's Draft 2020-12 validator class, with `pattern_search` for `pattern`."""
    import jsonschema

    def pattern(validator: Any, value: str, instance: Any, schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string") and pattern_search(value)(instance) is None:
            yield jsonschema.ValidationError(f"{instance!r} does not match {value!r}")

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": pattern})


@functools.cache
def validator(name: str) -> Any:
    """A compiled Draft 2020-12 validator for schema `name`."""
    return draft_validator()(load_schema(name))


class _PythonPattern:
    """The `pattern` keyword as `draft_validator` applies it (`pattern_search`),
    for jsonschema-rs: a custom keyword of that name replaces its own."""

    def __init__(self, parent_schema: dict[str, Any], value: Any, schema_path: list[str | int]):
        self._search = pattern_search(value)

    def validate(self, instance: Any) -> None:
        """Raise when `instance` is a string the pattern does not match."""
        if isinstance(instance, str) and self._search(instance) is None:
            raise ValueError("does not match the pattern")


@functools.cache
def fast_validator(name: str) -> jsonschema_rs.Validator:
    """A compiled jsonschema-rs validator for schema `name` (Draft 2020-12, from
    its `$schema`), reading `pattern` and `format` as `validator` does."""
    import jsonschema_rs

    return jsonschema_rs.validator_for(
        load_schema(name), validate_formats=False, keywords={"pattern": _PythonPattern}
    )


def conforms(name: str, document: Any) -> bool:
    """True when `document` is valid against schema `name`. False means only
    "not known to be valid": `validator(name)` then says what is wrong, if anything."""
    check = fast_validator(name)
    try:
        return check.is_valid(document)
    except Exception:  # whatever jsonschema-rs cannot take, jsonschema judges
        return False


def schema_errors(name: str, document: Any) -> list[Any]:
    """jsonschema's errors of `document` against schema `name`, ordered by path;
    none, and no jsonschema imported, when jsonschema-rs finds it valid."""
    if conforms(name, document):
        return []
    return sorted(validator(name).iter_errors(document), key=lambda error: list(error.path))


def schema_problem(name: str, document: Any) -> str | None:
    """The first problem of `document` against schema `name`, as
    "where: message" (the JSON path, or "(top level)"), or None when it is valid."""
    errors = schema_errors(name, document)
    if not errors:
        return None
    where = "/".join(str(part) for part in errors[0].absolute_path) or "(top level)"
    return f"{where}: {errors[0].message}"
