"""Reading one configuration file into plain values that remember where they were written.

We build values from PyYAML's event stream with a small stack machine instead of
calling `yaml.load`, because that lets us

- record the line and column of every key and value (JSON path -> position), so a
  JSON-Schema error can point at the exact spot;
- report duplicate keys, which `yaml.load` silently resolves to the last one;
- refuse anchors and aliases (a "billion laughs" file expands exponentially) and
  deep nesting (PyYAML's scanner slows down quadratically with depth; libyaml's
  composer overflows the C stack) as soon as the parser meets them;
- keep YAML dates as the text written: the schemas treat them as strings.

Every problem becomes a `ConfigIssue`; nothing else escapes for bad input.
"""

from __future__ import annotations

import ast
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.config.quote import quoted, shown
from reconciler.errors import ConfigIssue

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
# The C parser is about 15 times faster; the pure-Python one is the fallback.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Characters YAML 1.1 refuses (C0/C1 controls but tab, LF, CR, NEL; DEL; U+FFFE/F).
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_TAG = "tag:yaml.org,2002:"
_COLLECTION_TAGS = (None, "!", _TAG + "map", _TAG + "seq")
_ANCHORS = (
    "YAML anchors and aliases (&name, *name) are not supported: write the value out, "
    "or share it through defaults in qlik-email.yaml"
)

_SAFE_START = re.compile(r"[A-Za-z0-9_./]")
# PyYAML's problem texts quote what they found with repr(): one character, or a
# token name such as '<scalar>'. Anything longer (a tag handle) is file content.
_REPR = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"')
_TOKEN_NAME = re.compile(r"^<[a-z ]+>$")

JsonPath = tuple[str | int, ...]
Pos = tuple[int, int]


def display_name(path: Path) -> str:
    """How issues name `path`: relative to the current directory when it lies below
    it, made safe by `shown` (a file name may hold a line break or an escape
    sequence), and starting with `./` unless it starts with a letter, digit, `_`,
    `.` or `/`: a message line must never start with `::`, which the GitHub
    Actions runner would take for a workflow command."""
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:  # another drive, on Windows
        relative = absolute
    name = shown(absolute if relative.startswith("..") else relative, limit=None)
    return name if _SAFE_START.match(name) else f"./{name}"


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed file: its plain value and the position of every key and value in it."""

    file: str
    path: Path
    data: Any
    keys: Mapping[JsonPath, Pos] = field(default_factory=dict)
    values: Mapping[JsonPath, Pos] = field(default_factory=dict)
    raw: Mapping[JsonPath, str] = field(default_factory=dict)

    def position(self, path: JsonPath, *, key: bool = False) -> Pos:
        """Where `path` was written (its key if `key`), else the nearest enclosing node."""
        if key and path in self.keys:
            return self.keys[path]
        while path and path not in self.values:
            path = path[:-1]
        return self.values.get(path, (1, 1))

    def issue(self, path: JsonPath, message: str, *, key: bool = False) -> ConfigIssue:
        """A ConfigIssue located at `path` in this file."""
        line, column = self.position(path, key=key)
        # Values are quoted through `shown` where a message is phrased; this makes
        # sure no message at all holds a raw control character.
        return ConfigIssue(self.file, line, column, shown(message, limit=None))

    def get(self, *path: str | int) -> Any:
        """The value at `path`, or None when any step is missing or of another type."""
        value = self.data
        for step in path:
            if isinstance(step, str) and isinstance(value, dict):
                value = value.get(step)
            elif isinstance(step, int) and isinstance(value, list) and step < len(value):
                value = value[step]
            else:
                return None
        return value


class _Problem(Exception):
    """A fatal problem in one file: parsing it stops here."""

    def __init__(self, message: str, pos: Pos = (1, 1)) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def read_document(path: Path, file: str) -> tuple[Document | None, list[ConfigIssue]]:
    """Parse `path` (named `file` in issues). The document is None when it is unusable."""
    try:
        text = _read_text(path)
        builder = _Builder()
        _feed(builder, text)
    except _Problem as problem:
        line, column = problem.pos
        return None, [ConfigIssue(file, line, column, problem.message)]
    issues = [ConfigIssue(file, pos[0], pos[1], message) for pos, message in builder.problems]
    doc = Document(file, path, builder.root, builder.keys, builder.values, builder.raw)
    return doc, issues


def _read_text(path: Path) -> str:
    try:
        info = path.stat()
    except OSError as exc:
        raise _Problem(f"cannot read the file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise _Problem("is a directory, not a YAML file")
    if not stat.S_ISREG(info.st_mode):
        raise _Problem("is not a regular file")
    try:
        with path.open("rb") as handle:
            # As much as stat said (plus one byte, to see a file that grew since),
            # not MAX_BYTES + 1: that allocates 1 MiB per file, 22 µs against 8.
            data = handle.read(min(info.st_size, MAX_BYTES) + 1)
            if len(data) > info.st_size:  # it grew: read on, as far as the bound
                data += handle.read(MAX_BYTES + 1 - len(data))
    except OSError as exc:
        raise _Problem(f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise _Problem(f"the file is larger than 1 MiB ({info.st_size} bytes): not parsed")
    return _decode(data)


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[start : exc.start].decode("utf-8", errors="replace")) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        raise _Problem(
            "the file is not valid UTF-8 text: save it as UTF-8", (line, column)
        ) from None
    text = text.removeprefix("\ufeff")
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        code = f"U+{ord(bad.group()):04X}"
        raise _Problem(
            f"the file contains the control character {code}", _offset_pos(text, bad.start())
        )
    return text


def _offset_pos(text: str, offset: int) -> Pos:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _feed(builder: _Builder, text: str) -> None:
    loader = _LOADER(text)
    try:
        while loader.check_event():
            builder.feed(loader.get_event())
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text) from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, text: str) -> _Problem:
    """PyYAML's own wording and position, without its echo of the offending line."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    pos = _mark(mark) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or "the file cannot be parsed"
    message = f"invalid YAML: {_REPR.sub(_found, str(problem))}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    context = _REPR.sub(_found, str(context)) if context else None
    if context and context_mark is not None and _mark(context_mark)[0] != pos[0]:
        message += f" ({context} on line {_mark(context_mark)[0]})"
    elif context:
        message += f" ({context})"
    if "tab" not in message and _tab_near(text, pos):
        message += "; YAML indentation must use spaces, not tabs"
    return _Problem(message, pos)


def _found(match: re.Match[str]) -> str:
    """What PyYAML quoted: one character or a token name, never more of the file."""
    try:
        text = ast.literal_eval(match.group())
    except (ValueError, SyntaxError):
        return "(not shown)"
    if isinstance(text, str) and (len(text) == 1 or _TOKEN_NAME.match(text)):
        return quoted(text)
    return "(not shown)"


def _tab_near(text: str, pos: Pos) -> bool:
    lines = text.split("\n")
    line = lines[pos[0] - 1] if pos[0] - 1 < len(lines) else ""
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    return "\t" in indent or line[pos[1] - 1 : pos[1]] == "\t"


def _mark(mark: Any) -> Pos:
    return int(mark.line) + 1, int(mark.column) + 1


@dataclass(slots=True)
class _Frame:
    container: Any
    path: JsonPath
    key: str | None = None


class _Builder:
    """Turns the event stream into dicts, lists and scalars, recording positions."""

    def __init__(self) -> None:
        self.root: Any = None
        self.stack: list[_Frame] = []
        self.documents = 0
        self.keys: dict[JsonPath, Pos] = {}
        self.values: dict[JsonPath, Pos] = {}
        self.raw: dict[JsonPath, str] = {}
        self.problems: list[tuple[Pos, str]] = []
        self._resolver: Any = yaml.resolver.Resolver()
        constructor = yaml.constructor.SafeConstructor()
        self._construct = {
            "bool": constructor.construct_yaml_bool,
            "int": constructor.construct_yaml_int,
            "float": constructor.construct_yaml_float,
        }

    def feed(self, event: Any) -> None:
        """Consume one parser event."""
        pos = _mark(event.start_mark) if event.start_mark is not None else (1, 1)
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise _Problem("a file must hold one YAML document: remove the '---'", pos)
        elif isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Problem(_ANCHORS, pos)
        elif isinstance(event, yaml.ScalarEvent):
            self._scalar(event, pos)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            self._open(event, pos)
        elif isinstance(event, yaml.CollectionEndEvent):
            self.stack.pop()

    def _scalar(self, event: Any, pos: Pos) -> None:
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.container, dict) and top.key is None:
            self._key(top, event.value, pos)
            return
        path = self._place(self._value(event, pos), pos)
        self.raw[path] = event.value

    def _key(self, top: _Frame, key: str, pos: Pos) -> None:
        # Keys are taken as written: `on:` stays "on" rather than YAML 1.1's True.
        path = (*top.path, key)
        if key in top.container:
            first = self.keys[path][0]
            message = f"duplicate key {quoted(key)} (first written on line {first})"
            self.problems.append((pos, message))
        top.key = key
        self.keys[path] = pos

    def _open(self, event: Any, pos: Pos) -> None:
        if event.tag not in _COLLECTION_TAGS:
            raise _Problem(f"unsupported YAML tag {_short_tag(event.tag)}", pos)
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.container, dict) and top.key is None:
            raise _Problem("a mapping key must be a plain string, not a list or mapping", pos)
        if len(self.stack) >= MAX_DEPTH:
            raise _Problem(f"values are nested more than {MAX_DEPTH} levels deep", pos)
        container: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
        path = self._place(container, pos)
        self.stack.append(_Frame(container, path))

    def _place(self, value: Any, pos: Pos) -> JsonPath:
        """Store `value` in the open collection (or as the root); returns its path."""
        if not self.stack:
            self.root = value
            path: JsonPath = ()
        elif isinstance(self.stack[-1].container, list):
            top = self.stack[-1]
            path = (*top.path, len(top.container))
            top.container.append(value)
        else:
            top = self.stack[-1]
            assert top.key is not None
            path = (*top.path, top.key)
            top.container[top.key] = value
            top.key = None
        self.values[path] = pos
        return path

    def _value(self, event: Any, pos: Pos) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        name = tag.removeprefix(_TAG)
        if name in ("str", "timestamp"):
            return event.value
        if name == "null":
            return None
        construct = self._construct.get(name)
        if construct is not None:
            try:
                return construct(yaml.ScalarNode(tag, event.value))
            except ValueError:  # more digits than int() accepts; the text may be a secret
                raise _Problem(f"this {name} is too large", pos) from None
        raise _Problem(f"unsupported YAML tag {_short_tag(tag)}", pos)


def _short_tag(tag: str) -> str:
    return shown(tag.replace(_TAG, "!!", 1))
