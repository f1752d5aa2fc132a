"""The record of applied secrets as the commands open it (`--state FILE|git`)."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.app import err
from reconciler.engine.applied_store import FileStore, RecordStore
from reconciler.model import AppliedRecord

GIT = "git"


def open_store(
    state: str | None, remote: str | None, ref: str | None, config: str | Path
) -> RecordStore | None:
    """The store `--state` names (None without it): `git` keeps the record on a
    ref of the remote of the repository holding `config`, anything else is a file."""
    if state is None:
        if remote is not None or ref is not None:
            raise click.UsageError("--state-remote and --state-ref go with --state git")
        return None
    if state != GIT:
        if remote is not None or ref is not None:
            raise click.UsageError("--state-remote and --state-ref go with --state git")
        return FileStore(Path(state))
    from reconciler.engine.applied_git import GitLocation, GitStore

    return GitStore(config, GitLocation.of(remote, ref))


def read_record(store: RecordStore) -> AppliedRecord:
    """The record as it is now; why it is empty, when it is, on stderr."""
    loaded = store.load()
    if loaded.note is not None:
        err(f"Note: {loaded.note}.")
    return loaded.record
