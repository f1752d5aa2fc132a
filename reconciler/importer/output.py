"""Writing the files `qlik-email import` rendered: checked first, inside OUTDIR only.

The values in the files come from the tenants' servers, which may be hostile, and
OUTDIR may hold symbolic links someone else put there. So:

- every path written is `qlik-email.yaml` or `tenants/<name>.yaml` below OUTDIR,
  `<name>` a tenant name (which cannot hold `/` nor start with `.`);
- a symbolic link at any of those paths, or at `tenants/`, is refused before a
  tenant is contacted, `--force` or not: import never writes through a link;
- the files are validated as `load_config` validates a repository (from a
  staging directory outside OUTDIR) before anything is written: when they do
  not validate, nothing is;
- each file is written atomically: a temporary file next to it, then
  `os.replace`, which replaces a directory entry and never follows a link.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from reconciler.atomic import write_atomically
from reconciler.config import load_config
from reconciler.config.quote import shown
from reconciler.config.source import display_name
from reconciler.errors import ConfigError, ConfigIssue, ReconcilerError
from reconciler.importer.inventory import NAME

ROOT_FILE = "qlik-email.yaml"
TENANTS_DIR = "tenants"


def tenant_file(name: str) -> str:
    """The path, relative to OUTDIR, of the file for tenant `name`."""
    if not NAME.match(name):  # checked with the inventory: this is the last line
        raise ReconcilerError(f"tenant name {shown(name)} cannot be a file name")
    return f"{TENANTS_DIR}/{name}.yaml"


def refuse_links(root: Path, files: Sequence[str]) -> None:
    """Raise when `tenants/` or one of `files` (relative to `root`) is a symbolic
    link, even one whose target does not exist."""
    links = [rel for rel in (TENANTS_DIR, *files) if os.path.islink(root / rel)]
    if links:
        shown_links = ", ".join(display_name(root / rel) for rel in links[:5])
        more = f" and {len(links) - 5} more" if len(links) > 5 else ""
        raise ReconcilerError(
            f"{shown_links}{more}: a symbolic link; import never writes through one "
            "(remove it, or import into another directory)"
        )


def validate_files(
    root: Path, files: Mapping[str, str], allowed_hosts: Sequence[str] | None = None
) -> None:
    """Load `files` (relative path -> text) as a repository, as `validate` would:
    raise ConfigError naming each problem by the path the file would have in
    `root`. Nothing is written to `root`."""
    with tempfile.TemporaryDirectory(prefix="qlik-email-import-") as staging:
        base = Path(staging)
        (base / TENANTS_DIR).mkdir()
        for rel, text in files.items():
            (base / rel).write_text(text, encoding="utf-8")
        try:
            load_config(base, allowed_hosts=allowed_hosts)
        except ConfigError as exc:
            names = {display_name(base / rel): display_name(root / rel) for rel in files}
            raise ConfigError([_renamed(issue, names, root) for issue in exc.issues]) from None


def _renamed(issue: ConfigIssue, names: Mapping[str, str], root: Path) -> ConfigIssue:
    return replace(issue, file=names.get(issue.file, display_name(root)))


def write_files(root: Path, files: Mapping[str, str]) -> None:
    """Write `files` (relative path -> text) below `root`, each atomically, the
    root file first."""
    refuse_links(root, list(files))
    (root / TENANTS_DIR).mkdir(parents=True, exist_ok=True)
    for rel in sorted(files, key=lambda rel: rel != ROOT_FILE):
        write_atomically(root / rel, files[rel])
