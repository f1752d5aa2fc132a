"""JSON-Schema validation of one document, with jsonschema's errors turned into
messages a person can act on (`unknown key 'serverAdress' in email (did you mean
'serverAddress'?)`) at the line and column of the offending key or value.

Values of secret fields are never quoted: a message says what is wrong with a
password, never what the password is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from reconciler import jsonschemas
from reconciler.config.quote import quoted, shown
from reconciler.config.source import Document, JsonPath
from reconciler.config.words import SECRET_KEYS, describe, path_text, suggest
from reconciler.errors import ConfigIssue

_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "null": "empty",
}
# What a `pattern` failure means, by key (secret patterns are left to the checks).
_PATTERN_HINTS = {
    "name": "must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit",
    "expires": "must be a date written YYYY-MM-DD, such as 2026-12-31",
    "reason": "must not be empty: say why this drift is accepted",
    "until": "must be a date written YYYY-MM-DD, such as 2026-12-31",
}
# Where one key name means two things, the hint of the place it is written.
_PATH_HINTS: dict[tuple[str, ...], str] = {
    ("paused", "reason"): "must not be empty: say why the tenant is paused"
}
Translate = Callable[[Document, JsonPath, Any], Iterator[ConfigIssue]]


def load_schema(kind: str) -> dict[str, Any]:
    """The parsed `<kind>.schema.json` ("root" or "tenant")."""
    return jsonschemas.load_schema(f"{kind}.schema.json")


@functools.cache
def _validator(kind: str) -> Any:
    # One validator per schema for the whole run, not one per file; with its local
    # $refs inlined, as following a $ref costs a lookup per use (bench/NOTES.md).
    # jsonschema is
    # imported on first use: only a document that is not valid needs it.
    schema = load_schema(kind)
    return jsonschemas.draft_validator()(inline_refs(schema, schema.get("$defs", {})))


def inline_refs(node: Any, defs: dict[str, Any], expanding: tuple[str, ...] = ()) -> Any:
    """`node` with every `{"$ref": "#/$defs/NAME"}` replaced by that definition (as
    an `allOf` member when the node has other keywords too). Validation gives the
    same errors; recursive definitions keep their $ref."""
    if isinstance(node, list):
        return [inline_refs(item, defs, expanding) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    name = ref[len("#/$defs/") :] if isinstance(ref, str) and ref.startswith("#/$defs/") else None
    if name is None or name not in defs or name in expanding:
        return {key: inline_refs(value, defs, expanding) for key, value in node.items()}
    target = inline_refs(defs[name], defs, (*expanding, name))
    rest = {
        key: inline_refs(value, defs, expanding) for key, value in node.items() if key != "$ref"
    }
    if not rest:
        return target
    rest["allOf"] = [*rest.get("allOf", []), target]
    return rest


def schema_findings(doc: Document, kind: str) -> Iterator[tuple[JsonPath, ConfigIssue]]:
    """Every schema violation in `doc` (against the `kind` schema), with its JSON path."""
    # jsonschema-rs says quickly whether there is any (bench/NOTES.md);
    # jsonschema words them when there is.
    if jsonschemas.conforms(f"{kind}.schema.json", doc.data):
        return
    for error in _validator(kind).iter_errors(doc.data):
        path: JsonPath = tuple(error.absolute_path)
        handler = _HANDLERS.get(error.validator, _generic)
        for issue in handler(doc, path, error):
            yield path, issue


def schema_issues(doc: Document, kind: str) -> list[ConfigIssue]:
    """Every schema violation in `doc`, checked against the `kind` schema."""
    return [issue for _, issue in schema_findings(doc, kind)]


def _is_secret(path: JsonPath) -> bool:
    return bool(path) and path[-1] in SECRET_KEYS


def _got(doc: Document, path: JsonPath, value: Any) -> str:
    return describe(value, doc.raw.get(path), secret=_is_secret(path))


def _unknown_keys(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    known = list(error.schema.get("properties", {}))
    where = f"in {path_text(path)}" if path else "at the top level"
    for key in error.instance:
        if key in known:
            continue
        message = f"unknown key {quoted(key)} {where}"
        match = suggest(str(key), known)
        message += (
            f" (did you mean '{match}'?)" if match else f"; expected one of: {', '.join(known)}"
        )
        yield doc.issue((*path, key), message, key=True)


def _wrong_type(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    if path == ("email",):
        yield doc.issue(path, _email_choice(_got(doc, path, error.instance)))
        return
    expected = error.validator_value
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_TYPE_NAMES.get(name, name) for name in names)
    message = f"{path_text(path)} must be {wanted}, got {_got(doc, path, error.instance)}"
    yield doc.issue(path, message + _type_hint(doc, path, names, error.instance))


def _type_hint(doc: Document, path: JsonPath, names: list[str], value: Any) -> str:
    if _is_secret(path):
        return ""
    if isinstance(value, str) and {"integer", "number"} & set(names):
        if value.strip().lstrip("-").replace(".", "", 1).isdigit():
            return " (remove the quotes)"
    elif value is None:
        return " (write a value, or remove the key)"
    elif names == ["string"] and not isinstance(value, (dict, list)):
        return f' (put it in quotes: "{shown(doc.raw.get(path, value))}")'
    return ""


def _not_allowed(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    choices = [str(choice) for choice in error.validator_value]
    got = _got(doc, path, error.instance)
    message = f"{path_text(path)} must be one of {', '.join(choices)}, got {got}"
    match = suggest(str(error.instance), choices) if isinstance(error.instance, str) else None
    yield doc.issue(path, message + (f" (did you mean '{match}'?)" if match else ""))


def _const(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    got = _got(doc, path, error.instance)
    if error.validator_value == "absent":
        message = _email_choice(got)
    elif path == ("version",):
        message = f"version must be 1, the only version of the configuration language; got {got}"
    else:
        message = f"{path_text(path)} must be {error.validator_value!r}, got {got}"
    yield doc.issue(path, message)


def _email_choice(got: str) -> str:
    return (
        "email must be a mapping of e-mail settings, or the string 'absent' "
        f"to delete the tenant's configuration; got {got}"
    )


def _required(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    properties = error.schema.get("properties", {})
    # A misspelt key is reported once, as unknown with its suggestion, not a
    # second time as the key it was meant to be missing.
    known = list(properties)
    misspelt = {suggest(str(k), known) for k in error.instance if k not in known}
    for key in error.validator_value:
        if key in error.instance or key in misspelt:
            continue
        where = f" in {path_text(path)}" if path else ""
        hint = properties.get(key, {}).get("description", "")
        yield doc.issue(
            path, f"missing required key '{key}'{where}" + (f": {hint}" if hint else ""), key=True
        )


def _pattern(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    if _is_secret(path):
        return  # the semantic checks explain secret references better
    key = path[-1] if path else ""
    hint = _PATH_HINTS.get(tuple(str(p) for p in path)) or _PATTERN_HINTS.get(
        str(key), f"does not have the expected form {error.validator_value}"
    )
    yield doc.issue(path, f"{path_text(path)} {hint}, got {_got(doc, path, error.instance)}")


def _bound(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    wording = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "greater than",
        "exclusiveMaximum": "less than",
    }[error.validator]
    got = _got(doc, path, error.instance)
    yield doc.issue(path, f"{path_text(path)} must be {wording} {error.validator_value}, got {got}")


def _empty(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    yield doc.issue(path, f"{path_text(path)} must not be empty")


def _auth_choice(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    yield doc.issue(path, f"{path_text(path)} must hold exactly one of apiKey or oauth", key=True)


def _duplicates(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    yield doc.issue(path, f"{path_text(path)} must not list the same value twice")


def _generic(doc: Document, path: JsonPath, error: Any) -> Iterator[ConfigIssue]:
    # A keyword without a handler: its name only, as jsonschema's wording quotes the
    # whole value (unbounded, and maybe a secret).
    where, rule = path_text(path) or "the file", shown(error.validator)
    yield doc.issue(path, f"{where}: does not meet the schema's {rule} rule")


_HANDLERS: dict[str, Translate] = {
    "additionalProperties": _unknown_keys,
    "type": _wrong_type,
    "enum": _not_allowed,
    "const": _const,
    "required": _required,
    "pattern": _pattern,
    "minimum": _bound,
    "maximum": _bound,
    "exclusiveMinimum": _bound,
    "exclusiveMaximum": _bound,
    "minLength": _empty,
    "minItems": _empty,
    "uniqueItems": _duplicates,
    "minProperties": _auth_choice,
    "maxProperties": _auth_choice,
}
