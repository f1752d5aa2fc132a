"""`qlik-email fmt`: the configuration files in one canonical layout."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from reconciler.cli.app import EXIT_ERROR, EXIT_OK, err, out
from reconciler.config.layout import LayoutError, format_text
from reconciler.config.loader import ROOT_NAMES, ConfigLoad
from reconciler.config.source import display_name


@click.command()
@click.argument("path", required=False, default=".", type=click.Path(file_okay=True, dir_okay=True))
@click.option(
    "--check", is_flag=True, help="Change nothing: name each file fmt would change, exit 1 if any."
)
def fmt(path: str, check: bool) -> int:
    """Rewrite the root file and the tenant files at PATH in one layout: keys in
    the documented order, block style, two-space indentation, quotes only where
    needed. Comments are kept; what a file means never changes (a file whose
    meaning would is left as it is, with an error). Running it twice changes
    nothing the second time.

    Exit 0 when every file is formatted (or was), 1 when --check finds files to
    change or a file cannot be formatted.
    """
    changed, failed = [], 0
    for file, kind in _files(Path(path)):
        name = display_name(file)
        try:
            text = file.read_text(encoding="utf-8")
            formatted = format_text(text, kind)
        except (OSError, UnicodeDecodeError, LayoutError) as exc:
            err(f"Error: {name}: {exc}")
            failed += 1
            continue
        if formatted == text:
            continue
        changed.append(name)
        if check:
            out(f"would reformat {name}\n")
        elif file.is_symlink():
            err(f"Error: {name}: a symbolic link; not rewritten")
            failed += 1
        else:
            _replace(file, formatted)
    verb = "would reformat" if check else "reformatted"
    err(f"{len(changed)} file(s) {verb}.")
    return EXIT_ERROR if failed or (check and changed) else EXIT_OK


def _files(path: Path) -> list[tuple[Path, str]]:
    """The root file (if any) and every tenant file the configuration names."""
    load = ConfigLoad(path)
    directory = path if path.is_dir() else path.parent
    roots = [directory / name for name in ROOT_NAMES if (directory / name).is_file()]
    return [*((root, "root") for root in roots), *((file, "tenant") for file in load.files)]


def _replace(target: Path, text: str) -> None:
    """Write `text` over `target` atomically (a file next to it, then a rename)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, target.stat().st_mode & 0o777)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
