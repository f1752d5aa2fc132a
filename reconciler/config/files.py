"""Finding the tenant files: the root file's `tenants` globs, expanded inside the
configuration repository only, and within fixed bounds.

A pull request controls the globs, and CI runs with tenant-admin keys, so a glob
must not reach a file outside the repository (whose contents an error message
could then quote), nor make the run walk a whole file system:

- a glob is relative, and has no `..` component;
- a symbolic link (to a file or a directory) whose target lies outside the
  repository is not followed: it is reported by its own name;
- `**` descends into subdirectories but not through symbolic links, and neither
  `*` nor `**` matches a name starting with `.` (as Python's `glob`);
- expansion stops with an error as soon as all globs together have looked at
  more than MAX_ENTRIES directory entries (each directory counted once), or
  would go deeper than MAX_DEPTH directories.

We walk the tree ourselves instead of calling `glob.glob`, which expands
everything first (it follows symbolic links under `**`, so a link loop makes it
walk until path names get too long) and leaves only counting the result.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PureWindowsPath

from reconciler.paths import is_inside

MAX_ENTRIES = 20_000
MAX_DEPTH = 16
_MAGIC = frozenset("*?[")
# Whether Paths compare case-sensitively (POSIX), so two spellings are two files.
_CASE_SENSITIVE = PurePath("A") != PurePath("a")

Rel = tuple[str, ...]


class GlobLimitError(Exception):
    """A glob looked at more entries, or went deeper, than the bounds allow."""


@dataclass(slots=True)
class Expansion:
    """What the globs found: `matches` and the links refused as leading outside the
    repository (paths relative to the repository), and the entries left to look at."""

    root: str
    real_root: str
    skip: Rel | None = None
    left: int = MAX_ENTRIES
    matches: set[Rel] = field(default_factory=set)
    outside: set[Rel] = field(default_factory=set)
    listings: dict[Rel, list[os.DirEntry[str]]] = field(default_factory=dict)

    def charge(self, count: int) -> None:
        """Account for `count` more entries looked at; raise when over the bound."""
        self.left -= count
        if self.left < 0:
            raise GlobLimitError(
                f"the tenants globs look at more than {MAX_ENTRIES:,} files and directories "
                "together: narrow them"
            )

    def path(self, rel: Rel) -> Path:
        """The path of `rel` as issues name it (under the root as it was given)."""
        return Path(os.path.normpath(os.path.join(self.root, *rel)))

    def found(self) -> list[Path]:
        """The paths of `matches`, sorted as Paths sort, each once."""
        if _CASE_SENSITIVE:
            # Paths compare part by part and, here, as written: the relative parts
            # (plain names, all under one root) sort alike, without a Python-level
            # comparison of Paths, which is slow for large fleets.
            return [self.path(rel) for rel in sorted(self.matches)]
        return sorted({self.path(rel) for rel in self.matches})


def new_expansion(root_dir: Path, skip: str | None = None) -> Expansion:
    """An empty expansion for the repository at `root_dir`, whose entry named
    `skip` (the root file) no glob matches."""
    return Expansion(str(root_dir), os.path.realpath(root_dir), (skip,) if skip else None)


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` may not be used as a tenants glob, or None."""
    parts = pattern.replace("\\", "/").split("/")
    if pattern.startswith(("/", "\\")) or os.path.isabs(pattern) or PureWindowsPath(pattern).drive:
        return "must be relative to the root file's directory, not an absolute path"
    if ".." in parts:
        return "must not contain '..': tenant files are inside the repository"
    if len([part for part in parts if part not in ("", ".", "**")]) > MAX_DEPTH:
        return f"goes deeper than {MAX_DEPTH} directories"
    return None


def expand(expansion: Expansion, pattern: str) -> set[Rel]:
    """The paths `pattern` matches (adding them, and refused links, to `expansion`).
    Raises GlobLimitError when the bounds are exceeded."""
    parts: list[str] = []
    for part in pattern.split("/"):
        if part in ("", "."):
            continue
        if part == "**" and parts[-1:] == ["**"]:
            continue  # `**/**` is `**`, and would otherwise walk every tree twice
        parts.append(part)
    found: set[Rel] = set()
    _match(expansion, (), tuple(parts), found)
    found.discard(expansion.skip or ())
    expansion.matches |= found
    return found


def _match(expansion: Expansion, rel: Rel, parts: Rel, found: set[Rel]) -> None:
    if not parts:
        found.add(rel)
        return
    head, rest = parts[0], parts[1:]
    if head == "**":
        _match(expansion, rel, rest, found)
        for name, is_dir in _listing(expansion, rel, head, trailing=not rest):
            if is_dir:
                _match(expansion, _deeper(rel, name), parts, found)
            else:
                found.add(_deeper(rel, name, final=True))
    elif _MAGIC.isdisjoint(head):
        _literal(expansion, rel, head, rest, found)
    else:
        for name, is_dir in _listing(expansion, rel, head):
            if is_dir or not rest:
                _match(expansion, _deeper(rel, name, final=not rest), rest, found)


def _literal(expansion: Expansion, rel: Rel, name: str, rest: Rel, found: set[Rel]) -> None:
    expansion.charge(1)
    child = (*rel, name)
    try:
        info = os.lstat(os.path.join(expansion.root, *child))
    except OSError:
        return  # no such entry: the glob matches nothing here
    if stat.S_ISLNK(info.st_mode) and _leads_outside(expansion, child):
        expansion.outside.add(child)
        return
    if not rest or os.path.isdir(os.path.join(expansion.root, *child)):
        _match(expansion, _deeper(rel, name, final=not rest), rest, found)


def _listing(
    expansion: Expansion, rel: Rel, pattern: str, *, trailing: bool = False
) -> list[tuple[str, bool]]:
    """The entries of directory `rel` that `pattern` matches, each with whether it
    is a directory to descend into. For `**`, the directories but not the links to
    them, and when it ends the glob (`trailing`) every other entry too."""
    chosen = []
    for entry in _entries(expansion, rel):
        if entry.name.startswith(".") and not pattern.startswith("."):
            continue
        if pattern == "**" and entry.is_dir(follow_symlinks=False):
            chosen.append((entry.name, True))
        elif trailing if pattern == "**" else fnmatch.fnmatch(entry.name, pattern):
            if entry.is_symlink() and _leads_outside(expansion, (*rel, entry.name)):
                expansion.outside.add((*rel, entry.name))
                continue
            chosen.append((entry.name, pattern != "**" and _is_dir(entry)))
    return chosen


def _entries(expansion: Expansion, rel: Rel) -> list[os.DirEntry[str]]:
    """The entries of directory `rel`, listed and paid for once per expansion (the
    default globs `tenants/*.yaml` and `tenants/*.yml` list the same directory)."""
    entries = expansion.listings.get(rel)
    if entries is None:
        try:
            with os.scandir(os.path.join(expansion.root, *rel)) as scan:
                entries = list(scan)
        except OSError:
            entries = []  # not a directory, or unreadable: nothing matches below it
        expansion.charge(len(entries))
        expansion.listings[rel] = entries
    return entries


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _deeper(rel: Rel, name: str, *, final: bool = False) -> Rel:
    """`rel`/`name`, which may be MAX_DEPTH directories deep (a file one more)."""
    if len(rel) + (0 if final else 1) > MAX_DEPTH:
        raise GlobLimitError(
            f"the tenants globs reach deeper than {MAX_DEPTH} directories: narrow them"
        )
    return (*rel, name)


def _leads_outside(expansion: Expansion, rel: Rel) -> bool:
    """True when the link at `rel` resolves to a path outside the repository."""
    target = os.path.realpath(os.path.join(expansion.root, *rel))
    return not is_inside(target, expansion.real_root)
