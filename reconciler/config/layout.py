"""One canonical layout for configuration files (`qlik-email fmt`): keys in the
order of the JSON Schemas (the reference's order), block style, two-space indentation, list
items indented under their key, quotes only where YAML needs them. Comments
stay with the key they follow.

ruamel.yaml does the round trip: it is the YAML library that keeps comments.
It reads and writes YAML 1.1, as PyYAML (which the loader uses) reads it, so
that `yes`, `on` or `0777` mean the same before and after. A file whose data
would read differently once formatted (a bug, or YAML this layout cannot keep)
is refused rather than changed: `format_text` compares the two with PyYAML.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Mapping
from typing import Any

import yaml

from reconciler.jsonschemas import load_schema


class LayoutError(ValueError):
    """A file that cannot be formatted (not YAML, or its meaning would change)."""


Order = Mapping[tuple[str, ...], tuple[str, ...]]


@functools.cache
def key_order(kind: str) -> Order:
    """The order of the keys of each mapping of a "root" or "tenant" file, by
    its path (`*` for a list's items): the order of the properties in the
    file's JSON Schema, which is the reference's, so a new key needs no table."""
    schema = load_schema(f"{kind}.schema.json")
    found: dict[tuple[str, ...], tuple[str, ...]] = {}
    _collect(schema, schema.get("$defs", {}), (), found, 0)
    return found


def _collect(
    node: Any, defs: Mapping[str, Any], path: tuple[str, ...], found: dict[Any, Any], depth: int
) -> None:
    if not isinstance(node, dict) or depth > 16:
        return
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        _collect(defs.get(reference.removeprefix("#/$defs/")), defs, path, found, depth + 1)
    for branch in ("then", "else"):
        _collect(node.get(branch), defs, path, found, depth + 1)
    for part in (*node.get("allOf", []), *node.get("anyOf", []), *node.get("oneOf", [])):
        _collect(part, defs, path, found, depth + 1)
    properties = node.get("properties")
    if isinstance(properties, dict):
        found.setdefault(path, tuple(properties))
        for key, value in properties.items():
            _collect(value, defs, (*path, key), found, depth + 1)
    _collect(node.get("items"), defs, (*path, "*"), found, depth + 1)


_DIRECTIVE = "%YAML 1.1\n---\n"


def format_text(text: str, kind: str) -> str:
    """`text` (a "root" or "tenant" file) in the canonical layout."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MantissaNoDotYAML1_1Warning, YAMLError

    round_trip = YAML()
    round_trip.version = (1, 1)
    round_trip.indent(mapping=2, sequence=4, offset=2)
    round_trip.width = 4096  # never fold a long value over two lines
    try:
        with warnings.catch_warnings():
            # It reads `1e3` as PyYAML does (text), but warns: the check below
            # is what says whether the meaning holds.
            warnings.simplefilter("ignore", MantissaNoDotYAML1_1Warning)
            data = round_trip.load(text)
    except YAMLError as exc:
        raise LayoutError(f"not YAML that can be formatted: {_first_line(exc)}") from None
    if data is None:
        return text
    _arrange(data, key_order(kind), ())
    buffer = io.StringIO()
    round_trip.dump(data, buffer)
    formatted = buffer.getvalue().removeprefix(_DIRECTIVE)
    if _meaning(formatted) != _meaning(text):
        raise LayoutError("formatting would change what the file means: left as it is")
    return formatted


def _arrange(
    node: Any, order: Mapping[tuple[str, ...], tuple[str, ...]], path: tuple[str, ...]
) -> None:
    """Block style everywhere, and each mapping's known keys in their order
    (unknown keys after them, as written)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedSeq):
        node.fa.set_block_style()
        for item in node:
            _arrange(item, order, (*path, "*"))
    elif isinstance(node, CommentedMap):
        node.fa.set_block_style()
        known = order.get(path, ())
        for key in [*(k for k in known if k in node), *(k for k in list(node) if k not in known)]:
            node.move_to_end(key)
        for key, value in node.items():
            _arrange(value, order, (*path, str(key)))


def _meaning(text: str) -> Any:
    """What the loader reads in `text` (PyYAML, as the configuration is loaded)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LayoutError(f"not YAML that can be formatted: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
