"""Writing a file so that a reader sees the old file or the new one, never half
of one: the text goes to a fresh file beside the target, is flushed to disk,
then renamed over the target."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_atomically(target: Path, text: str) -> None:
    """Write `text` to `target` (UTF-8) atomically; raises OSError."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    # O_EXCL and O_NOFOLLOW: a fresh file of our own, never an existing one or a link.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
