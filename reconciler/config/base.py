"""The trusted configuration a pull request is checked against.

`--base REV` names a git revision of the repository that holds the
configuration. It is resolved in the repository's object database, never looked
up in the working tree (which the pull request controls: a directory it adds,
named like the revision, must not stand in for the base), and read with `git
archive` into a temporary directory, so that the very same loader reads it and
its tenant globs match the files committed at that revision. The configuration
path is the same literal path in both trees: a symbolic link in it, in the
checkout or in either commit, is refused, since a link would let the pull
request choose which directory of the base judges it.

`--base-dir DIR` is the explicit, separate way to name a trusted directory
(a copy made outside the pull request's checkout); no workflow uses it.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from reconciler.config.loader import ConfigLoad, load_config
from reconciler.errors import ConfigError, ConfigIssue
from reconciler.model import DesiredState
from reconciler.values import valueclass

_GIT_TIMEOUT_S = 120
_LINK_MODE = "120000"


@valueclass
class TrustedBase:
    """Where the trusted configuration comes from: a git `revision` of the
    repository holding the configuration, or (explicitly) a `directory`."""

    revision: str | None = None
    directory: Path | None = None

    def __post_init__(self) -> None:
        if (self.revision is None) == (self.directory is None):
            raise ValueError("a TrustedBase is a revision or a directory, not both")

    def __str__(self) -> str:
        return self.revision if self.revision is not None else str(self.directory)


@contextmanager
def base_checkout(base: TrustedBase, config: str | Path) -> Iterator[Path]:
    """The base configuration matching `config` (a directory or its root file):
    the same literal path inside a temporary copy of the base revision of the
    repository holding `config`, or inside the base directory."""
    if base.directory is not None:
        yield _directory_base(base.directory, config)
        return
    revision = base.revision or ""
    if not revision or revision.startswith("-") or not revision.isprintable() or " " in revision:
        raise _base_error(f"{revision!r} is not a git revision")
    config_path, top, parts = _literal_path(config)
    commit = _resolve(top, revision)
    directory_parts = parts if _is_dir(config_path) else parts[:-1]
    _refuse_links_in_tree(top, commit, parts, revision)
    _refuse_links_in_tree(top, "HEAD", parts, "the checked-out commit")
    with tempfile.TemporaryDirectory(prefix="qlik-email-base-") as tmp:
        pathspec = str(PurePosixPath(*directory_parts))  # "." for the top level
        _extract(_git(top, "archive", "--format=tar", commit, "--", pathspec), Path(tmp))
        target = Path(tmp).joinpath(*parts)
        if not os.path.lexists(target):
            where = PurePosixPath(*parts)
            raise _base_error(f"{where} does not exist at the base revision {revision}")
        yield target


def _directory_base(directory: Path, config: str | Path) -> Path:
    if not directory.is_dir():
        raise _base_error(f"--base-dir {directory} is not a directory")
    config_path = Path(config)
    if _is_dir(config_path):
        return directory
    return directory / config_path.name


def _is_dir(path: Path) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode) if os.path.lexists(path) else False


def _literal_path(config: str | Path) -> tuple[Path, Path, tuple[str, ...]]:
    """`config` as an absolute path made without following links, the top level
    of its git repository, and the path's parts below that top level, each
    checked not to be a symbolic link. Links above the top level (the
    checkout's own location) are not the pull request's to choose."""
    path = Path(os.path.abspath(config))
    if not os.path.lexists(path):
        raise _base_error(f"{config}: no such file or directory")
    top = _top_level(path)
    ancestors = [*reversed(path.parents), path]
    for index, candidate in enumerate(ancestors):
        if os.path.isdir(candidate) and os.path.samefile(candidate, top):
            below = ancestors[index + 1 :]
            break
    else:
        raise _base_error(f"{config} is not inside the git repository at {top}")
    for part in below:
        if os.path.islink(part):
            raise _link_error(str(config), f"{part} is a symbolic link")
    return path, top, tuple(part.name for part in below)


def _top_level(path: Path) -> Path:
    directory = path if _is_dir(path) else path.parent
    return Path(_git(directory, "rev-parse", "--show-toplevel").decode().strip())


def _resolve(top: Path, revision: str) -> str:
    try:
        found = _git(top, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except ConfigError:
        raise _base_error(
            f"{revision!r} is not a commit of the repository at {top} (fetch it first: "
            "--base names a git revision, never a directory)"
        ) from None
    return found.decode().strip()


def _refuse_links_in_tree(top: Path, commit: str, parts: Sequence[str], where: str) -> None:
    """A symbolic link at any of the configuration path's `parts` in `commit`."""
    paths = [str(PurePosixPath(*parts[: i + 1])) for i in range(len(parts))]
    if not paths:
        return
    listing = _git(top, "ls-tree", "-z", commit, "--", *paths).decode(errors="replace")
    for entry in filter(None, listing.split("\0")):
        # "<mode> <type> <object>\t<path>"
        mode, name = entry.partition(" ")[0], entry.partition("\t")[2]
        if mode == _LINK_MODE and name in paths:
            raise _link_error(str(PurePosixPath(*parts)), f"{name} is a symbolic link in {where}")


def _link_error(config: str, detail: str) -> ConfigError:
    return _base_error(
        f"{detail}: under --base the configuration path ({config}) must be the same "
        "literal path in the checkout and in the base, without symbolic links"
    )


def _git(cwd: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _base_error(f"git {args[0]} failed: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else f"exit status {done.returncode}"
        raise _base_error(f"git {args[0]} failed: {reason}")
    return done.stdout


def _extract(archive: bytes, target: Path) -> None:
    # The "data" filter refuses absolute paths, links out of the target and
    # device files: the archive is trusted content, but the check costs nothing.
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


def _base_error(message: str) -> ConfigError:
    return ConfigError([ConfigIssue("--base", 1, 1, message)])


def load_against_base(
    path: str | Path, base: TrustedBase, *, allowed_hosts: Sequence[str] | None = None
) -> tuple[DesiredState, DesiredState]:
    """The configuration at `path` under the settings of the base `base`, and
    the base configuration itself. A problem of
    the base is reported as `--base REF: ...` (the base is not for the pull
    request to fix, but the run cannot be judged without it)."""
    load, trusted = open_against_base(path, base, allowed_hosts=allowed_hosts)
    return load.finish(), trusted


def open_against_base(
    path: str | Path, base: TrustedBase, *, allowed_hosts: Sequence[str] | None = None
) -> tuple[ConfigLoad, DesiredState]:
    """`load_against_base` with the pull request's tenant files not loaded yet:
    the base is loaded whole (every tenant is judged against all of it)."""
    with base_checkout(base, path) as base_path:
        try:
            trusted = load_config(base_path, allowed_hosts=allowed_hosts)
        except ConfigError as exc:
            raise _base_error(
                f"the base configuration at {base} is not valid: "
                + "; ".join(f"{i.message} ({_inside(i.file, base_path)})" for i in exc.issues[:5])
            ) from None
    load = ConfigLoad(
        path,
        allowed_hosts=allowed_hosts,
        trusted=trusted.settings,
    )
    return load, trusted


def _inside(file: str, base_path: Path) -> str:
    """An issue's file named relative to the base, not the temporary copy."""
    root = base_path if base_path.is_dir() else base_path.parent
    try:
        return str(Path(os.path.abspath(file)).relative_to(root.resolve()))
    except ValueError:
        return file
