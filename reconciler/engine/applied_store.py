"""Where the record of applied secrets is kept (`--state FILE` or `--state git`).

A store reads the record once, before planning; makes sure, once, before apply
writes anything to a tenant, that the record can be written (`claim`); and after
the run merges what the run applied into the newest record (`save`). The one
implementation here keeps a file; `engine.applied_git` keeps the record on a
ref of the configuration repository's remote.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from reconciler.documents.state import load_record, save_record
from reconciler.engine.applied import merged
from reconciler.errors import StateFileError
from reconciler.model import AppliedRecord, AppliedSecret
from reconciler.values import valueclass


@valueclass
class Loaded:
    """The record a store read, and, when it is empty for a reason the user
    should hear (none yet, or unreadable), that reason."""

    record: AppliedRecord
    note: str | None = None


class RecordStore(Protocol):
    """A place the record of applied secrets is kept."""

    @property
    def where(self) -> str:
        """The place, for messages."""
        ...

    def load(self) -> Loaded:
        """The record as it is now (plan, drift and apply read it)."""
        ...

    def claim(self) -> None:
        """Make sure the record can be written, or raise StateFileError: apply
        calls it once, before its first write to a tenant."""
        ...

    def save(self, entries: Mapping[str, AppliedSecret]) -> bool:
        """Merge `entries` into the newest record and write it; False when the
        record already held them (nothing written)."""
        ...


class FileStore:
    """The record in a local file, written atomically (`applied.save_record`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def where(self) -> str:
        return str(self.path)

    def load(self) -> Loaded:
        if not self.path.exists():
            return Loaded(AppliedRecord(), f"no record at {self.path} yet: apply creates it")
        return Loaded(load_record(self.path))

    def claim(self) -> None:
        """The file's directory exists and takes a new file (a temporary one is
        created and removed: the atomic write needs exactly that), and the path
        is not a directory."""
        directory = self.path.parent if str(self.path.parent) else Path(".")
        if self.path.is_dir():
            raise StateFileError(f"{self.path}: is a directory, not an applied-state file")
        if not directory.is_dir():
            raise StateFileError(
                f"{self.path}: cannot write the applied-state file: the directory "
                f"{directory} does not exist (create it first)"
            )
        try:
            handle, probe = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
            os.close(handle)
            os.unlink(probe)
        except OSError as exc:
            raise StateFileError(
                f"{self.path}: cannot write the applied-state file: {exc}"
            ) from None

    def save(self, entries: Mapping[str, AppliedSecret]) -> bool:
        save_record(self.path, merged(load_record(self.path), entries))
        return True
