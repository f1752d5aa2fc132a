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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.config.quote import quoted, shown
from reconciler.errors import ConfigIssue
from reconciler.paths import read_bounded
from reconciler.values import valueclass

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
# The C parser is many times faster (bench/NOTES.md); the pure-Python one is
# the fallback. Only events are asked for: CBaseLoader, the lightest public C
# loader (no tag resolution, no constructor work until asked), is enough.
_LOADER: Any = getattr(yaml, "CBaseLoader", yaml.SafeLoader)  # absent without libyaml
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


class DisplayNames:
    """`display_name` for many files, worked out once per directory: a file's
    name is the directory's (relative below the current directory, absolute
    elsewhere) followed by the file's own (os.path.relpath is costly per call: bench/NOTES.md).
    For anything but a plain file name, `display_name` itself decides."""

    def __init__(self) -> None:
        self._prefixes: dict[str, str | None] = {}

    def __call__(self, path: Path) -> str:
        """The same as `display_name(path)`, with the current directory unchanged."""
        directory, name = os.path.split(path)
        if directory not in self._prefixes:
            self._prefixes[directory] = self._prefix(directory)
        prefix = self._prefixes[directory]
        relative = None if prefix is None else prefix + name
        if relative is None or name in ("", os.curdir, os.pardir) or relative.startswith(".."):
            return display_name(path)
        text = shown(relative, limit=None)  # `shown` escapes character by character
        return text if _SAFE_START.match(text) else f"./{text}"

    @staticmethod
    def _prefix(directory: str) -> str | None:
        """What the names of the files in `directory` start with: its path from
        the current directory ("" for the current one) when it is at or below it,
        else its absolute path (as `display_name`); None on another drive."""
        absolute = os.path.abspath(directory)
        try:
            relative = os.path.relpath(absolute)
        except ValueError:  # another drive, on Windows
            return None
        if relative.startswith(".."):
            return absolute.rstrip(os.sep) + os.sep
        return "" if relative == os.curdir else relative + os.sep


@valueclass
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
        # First as much as stat said (plus one byte, to see a file that grew
        # since), not MAX_BYTES + 1, which allocated 1 MiB per file (bench/NOTES.md).
        data = read_bounded(path, MAX_BYTES, first=min(info.st_size, MAX_BYTES) + 1)
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
        builder.run(loader.get_event)
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
    mapping: bool
    key: str | None = None  # in a mapping: the key whose value comes next
    key_path: JsonPath = ()  # and its path


_SCALAR = yaml.ScalarEvent
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
# Plain scalars are resolved (`true`, `12`, `~`) as PyYAML's SafeLoader does; the
# resolver and constructors keep no state between calls, so one serves every file.
_RESOLVER: Any = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_CONSTRUCT = {
    "bool": _CONSTRUCTOR.construct_yaml_bool,
    "int": _CONSTRUCTOR.construct_yaml_int,
    "float": _CONSTRUCTOR.construct_yaml_float,
}


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

    def run(self, get_event: Callable[[], Any]) -> None:
        """Consume every event `get_event` gives (None after the last)."""
        # One loop, events told apart by their exact class (the C and the Python
        # parser make the same ones), and the common cases inline: a key, and a
        # value in a mapping (a quoted string needs no resolver), rather than a
        # call and a chain of isinstance per event (bench/NOTES.md).
        stack, keys, values, raw = self.stack, self.keys, self.values, self.raw
        event = get_event()
        while event is not None:
            kind = type(event)
            if kind in _ENDS:
                stack.pop()
                event = get_event()
                continue
            mark = event.start_mark
            pos = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            if kind is _SCALAR:
                if event.anchor is not None:
                    raise _Problem(_ANCHORS, pos)
                top = stack[-1] if stack else None
                if top is None or not top.mapping:
                    raw[self._place(self._value(event, pos), pos)] = event.value
                elif top.key is None:
                    # Keys are taken as written: `on:` stays "on" rather than True.
                    key = event.value
                    path = (*top.path, key)
                    if key in top.container:
                        first = keys[path][0]
                        message = f"duplicate key {quoted(key)} (first written on line {first})"
                        self.problems.append((pos, message))
                    top.key, top.key_path = key, path
                    keys[path] = pos
                else:  # a value in a mapping (`_place`, inline)
                    text = event.value
                    quoted_str = event.tag is None and not event.implicit[0]
                    path = top.key_path
                    top.container[top.key] = text if quoted_str else self._value(event, pos)
                    top.key = None
                    values[path] = pos
                    raw[path] = text
            elif kind in _STARTS:
                if event.anchor is not None:
                    raise _Problem(_ANCHORS, pos)
                self._open(event, pos)
            elif kind is yaml.AliasEvent:
                raise _Problem(_ANCHORS, pos)
            elif kind is yaml.DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    raise _Problem("a file must hold one YAML document: remove the '---'", pos)
            event = get_event()

    def _open(self, event: Any, pos: Pos) -> None:
        if event.tag not in _COLLECTION_TAGS:
            raise _Problem(f"unsupported YAML tag {_short_tag(event.tag)}", pos)
        top = self.stack[-1] if self.stack else None
        if top is not None and top.mapping and top.key is None:
            raise _Problem("a mapping key must be a plain string, not a list or mapping", pos)
        if len(self.stack) >= MAX_DEPTH:
            raise _Problem(f"values are nested more than {MAX_DEPTH} levels deep", pos)
        mapping = type(event) is yaml.MappingStartEvent
        container: Any = {} if mapping else []
        path = self._place(container, pos)
        self.stack.append(_Frame(container, path, mapping))

    def _place(self, value: Any, pos: Pos) -> JsonPath:
        """Store `value` in the open collection (or as the root); returns its path."""
        if not self.stack:
            self.root = value
            path: JsonPath = ()
        elif not self.stack[-1].mapping:
            top = self.stack[-1]
            path = (*top.path, len(top.container))
            top.container.append(value)
        else:
            top = self.stack[-1]
            assert top.key is not None
            path = top.key_path
            top.container[top.key] = value
            top.key = None
        self.values[path] = pos
        return path

    def _value(self, event: Any, pos: Pos) -> Any:
        tag = event.tag
        if tag is None and not event.implicit[0]:
            return event.value  # quoted, untagged: the resolver would say str
        if tag is None or tag == "!":
            tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
        name = tag.removeprefix(_TAG)
        if name in ("str", "timestamp"):
            return event.value
        if name == "null":
            return None
        construct = _CONSTRUCT.get(name)
        if construct is not None:
            try:
                return construct(yaml.ScalarNode(tag, event.value))
            except ValueError:  # more digits than int() accepts; the text may be a secret
                raise _Problem(f"this {name} is too large", pos) from None
        raise _Problem(f"unsupported YAML tag {_short_tag(tag)}", pos)


def _short_tag(tag: str) -> str:
    return shown(tag.replace(_TAG, "!!", 1))
