"""Access to the JSON Schemas shipped in `schemas/`, compiled once each.

Two validators per schema: `conforms` answers "is this document valid?" with
jsonschema-rs (Rust: 3 µs for a tenant file, against jsonschema's 86), and only
when the answer is not yes does a caller ask `validator` (jsonschema) for the
errors, whose wording the messages are built from. So a valid run never imports
jsonschema (about 65 ms), and every message is jsonschema's as before.

The two must agree on what is valid (tests/config/test_schema_agreement.py).
Where they read a schema differently, the difference is removed here:

- `pattern`: jsonschema applies Python's `re.search`; jsonschema-rs follows
  ECMA 262, where `$` does not match before a final newline, `.` does not
  match `\\r` or U+2028, and `\\s` is another set of characters (U+FEFF in,
  U+001C-U+001F and U+0085 out, so `\\S` would accept a `reason` of "\\x85"
  that jsonschema refuses). jsonschema-rs is given the keyword in Python's
  dialect instead (`_PythonPattern`), which is 2 of those 3 µs.
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
def validator(name: str) -> Any:
    """A compiled Draft 2020-12 validator for schema `name`."""
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema(name))


class _PythonPattern:
    """The `pattern` keyword as jsonschema applies it (`re.search`), for
    jsonschema-rs: a custom keyword of that name replaces its own."""

    def __init__(self, parent_schema: dict[str, Any], value: Any, schema_path: list[str | int]):
        self._search = re.compile(value).search

    def validate(self, instance: Any) -> None:
        """Raise when `instance` is a string the pattern does not match."""
        if isinstance(instance, str) and self._search(instance) is None:
            raise ValueError("does not match the pattern")


@functools.cache
def fast_validator(name: str) -> jsonschema_rs.Validator:
    """A compiled jsonschema-rs validator for schema `name` (Draft 2020-12, from
    its `$schema`), reading `pattern` and `format` as jsonschema does."""
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
