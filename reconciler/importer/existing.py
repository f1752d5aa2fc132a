"""`import --add`: new tenants for a repository that exists, written against its
root file, which is never touched.

The root file's `defaults` decide what the new files leave out: an `auth`
equal to `defaults.auth`, and every e-mail value equal to `defaults.email`.
Before a file is written, the repository with the new files is loaded as
`validate` loads it (from a copy outside the repository), and each new tenant
must be among those its `tenants` globs find.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field, replace
from pathlib import Path
from typing import Any

from reconciler.config import load_config
from reconciler.config.build import build_auth
from reconciler.config.checks import url_identity
from reconciler.config.loader import ROOT_NAMES
from reconciler.config.quote import shown
from reconciler.config.source import display_name, read_document
from reconciler.errors import ConfigError, ConfigIssue, ReconcilerError
from reconciler.importer.inventory import InventoryEntry
from reconciler.model import DesiredState
from reconciler.values import valueclass


@valueclass
class Repository:
    """A valid configuration repository and its root file's `defaults` as written."""

    path: Path
    desired: DesiredState
    auth: Mapping[str, Any] | None = None
    email: Mapping[str, Any] = field(default_factory=dict)


def open_repository(path: Path, allowed_hosts: Sequence[str] | None) -> Repository:
    """The repository at `path`; ConfigError when it is not valid, ReconcilerError
    when it has no root file (then it is a new repository: import without --add)."""
    roots = [path / name for name in ROOT_NAMES if (path / name).is_file()]
    if not roots:
        raise ReconcilerError(
            f"{display_name(path)}: no {ROOT_NAMES[0]} here; --add adds tenants to an "
            "existing repository (import without --add to start one)"
        )
    desired = load_config(path, allowed_hosts=allowed_hosts)
    doc, _ = read_document(roots[0], display_name(roots[0]))
    data = doc.data if doc is not None and isinstance(doc.data, dict) else {}
    defaults = data.get("defaults") or {}
    email = defaults.get("email")
    return Repository(path, desired, defaults.get("auth"), email if isinstance(email, dict) else {})


def clashes(repository: Repository, entries: Iterable[InventoryEntry]) -> list[str]:
    """The entries whose name or URL a tenant of the repository already has."""
    names = {t.name.casefold(): t for t in repository.desired.tenants}
    urls = {url_identity(t.url): t for t in repository.desired.tenants}
    found = []
    for entry in entries:
        same = names.get(entry.name.casefold()) or urls.get(url_identity(entry.url))
        if same is not None:
            found.append(f"{shown(entry.name)} ({shown(entry.url)}): already {same.source}")
    return found


def written_auth(
    repository: Repository, own: Mapping[str, Any] | None, given: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The `auth` a new tenant file needs: its own (from the inventory), else the
    one given on the command line, left out when it is the root's defaults.auth."""
    auth = own if own is not None else given
    if auth is None:
        if repository.auth is None:
            raise ReconcilerError(
                "the root file has no defaults.auth: pass --api-key-ref (or the --oauth-* "
                "options), or give each tenant its auth in the inventory"
            )
        return None
    default = build_auth(dict(repository.auth)) if repository.auth is not None else None
    return None if default is not None and build_auth(dict(auth)) == default else auth


def check_added(
    repository: Repository, files: Mapping[str, str], allowed_hosts: Sequence[str] | None
) -> None:
    """Load the repository with `files` (relative path -> text) added, from a copy:
    raise ConfigError (issues named as in the repository) when it does not
    validate, or when the root's `tenants` globs do not find a new file."""
    with tempfile.TemporaryDirectory(prefix="qlik-email-add-") as staging:
        copy = Path(staging) / "repository"
        shutil.copytree(repository.path, copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        for rel, text in files.items():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            (copy / rel).write_text(text, encoding="utf-8")
        try:
            desired = load_config(copy, allowed_hosts=allowed_hosts)
        except ConfigError as exc:
            raise ConfigError([_renamed(i, copy, repository.path) for i in exc.issues]) from None
    loaded = {t.source.file.removeprefix(display_name(copy)) for t in desired.tenants}
    missed = [rel for rel in files if f"/{rel}" not in loaded]
    if missed:
        raise ReconcilerError(
            f"the tenants globs of the root file do not match {', '.join(missed[:5])}: the "
            "new tenants would not be managed; nothing was written"
        )


def _renamed(issue: ConfigIssue, copy: Path, root: Path) -> ConfigIssue:
    staged = display_name(copy)
    if not issue.file.startswith(staged):
        return issue
    return replace(issue, file=display_name(root) + issue.file.removeprefix(staged))
