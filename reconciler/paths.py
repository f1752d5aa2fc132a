"""Whether a path lies inside a directory, for the checks that confine reads
to the configuration repository (tenant files, secret files)."""

from __future__ import annotations

import os


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
