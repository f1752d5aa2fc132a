"""The files the tool reads from a repository (tenant files, secret files):
whether a path lies inside a directory, and a read within a bound."""

from __future__ import annotations

import os

# O_CLOEXEC: a command the tool runs inherits no descriptor (POSIX); O_BINARY:
# no newline translation (Windows). Each is 0 where it does not exist.
_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def is_inside(real_path: str, real_root: str) -> bool:
    """True when `real_path` is `real_root` or lies below it; both are real
    paths (`os.path.realpath`: absolute, normalised, symlinks resolved)."""
    if os.sep == "/" and os.altsep is None:
        # Normalised POSIX paths: a prefix test up to a separator says what
        # `os.path.commonpath` says, without splitting both paths into lists.
        return real_path == real_root or real_path.startswith(real_root.rstrip("/") + "/")
    try:
        return os.path.commonpath([real_path, real_root]) == real_root
    except ValueError:  # another drive, on Windows
        return False


def read_bounded(path: str | os.PathLike[str], limit: int, flags: int = 0, first: int = 0) -> bytes:
    """At most `limit` + 1 bytes of `path` (more means it is too large), read
    through a descriptor opened with `flags` as well (a file object's buffering
    is not needed to read a whole file), to its end or past the bound. `first`
    is how much the first read asks for (default `limit` + 1): a size the
    caller expects, so that a small file does not allocate `limit` bytes."""
    handle = os.open(path, _READ | flags)
    try:
        data = b""
        size = first or limit + 1
        while len(data) <= limit:
            chunk = os.read(handle, size)
            if not chunk:
                break
            data += chunk
            size = limit + 1 - len(data)
        return data
    finally:
        os.close(handle)
