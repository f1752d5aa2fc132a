"""`--base REF_OR_DIR`: the trusted configuration a pull request is checked against.

The base is either a directory, or a git ref of the repository that holds the
configuration. A ref is read with `git archive` into a temporary directory (the
working tree is never touched), so that the very same loader reads it and its
tenant globs match the files committed at that ref.

`narrow_settings` is the rule for security settings: those of the base apply,
and a pull request may only make them stricter.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from reconciler.config.hosts import narrow_hosts
from reconciler.config.loader import ConfigLoad, load_config
from reconciler.config.policy import narrow_policy
from reconciler.errors import ConfigError, ConfigIssue
from reconciler.model import DEFAULT_ALLOWED_HOSTS, DesiredState, Safety, Settings

_GIT_TIMEOUT_S = 120


@contextmanager
def base_checkout(base: str, config: str | Path) -> Iterator[Path]:
    """The base configuration matching `config` (a directory or its root file):
    `base` itself when it is a directory, else the same path inside a temporary
    copy of the git ref `base` of the repository holding `config`."""
    if os.path.isdir(base):
        yield Path(base)
        return
    if not base or base.startswith("-") or any(c.isspace() or c == "\0" for c in base):
        raise ConfigError([ConfigIssue("--base", 1, 1, f"{base!r} is not a directory or a ref")])
    config_path = Path(config).resolve()
    directory = config_path if config_path.is_dir() else config_path.parent
    top = Path(_git(directory, "rev-parse", "--show-toplevel").decode().strip())
    prefix = directory.relative_to(top.resolve())
    commit = _git(top, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}").decode().strip()
    with tempfile.TemporaryDirectory(prefix="qlik-email-base-") as tmp:
        _extract(_git(top, "archive", "--format=tar", commit, "--", str(prefix)), Path(tmp))
        target = Path(tmp) / prefix
        yield target if config_path.is_dir() else target / config_path.name


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


def narrow_settings(wanted: Settings, trusted: Settings) -> Settings:
    """The settings that apply to a pull request's configuration: `trusted` (the
    base's) for everything that guards a secret or a tenant, narrowed where
    `wanted` (the pull request's) is stricter; concurrency and timeout from `wanted`."""
    if wanted.allowed_hosts == DEFAULT_ALLOWED_HOSTS:  # unset, or as wide as the default
        hosts = trusted.allowed_hosts
    else:
        hosts = narrow_hosts(wanted.allowed_hosts, trusted.allowed_hosts)
    return replace(
        wanted,
        allowed_hosts=hosts,
        safety=_stricter(wanted.safety, trusted.safety),
        ignore=tuple(rule for rule in wanted.ignore if rule in trusted.ignore),
        policy=narrow_policy(wanted.policy, trusted.policy),
        deadlines=wanted.deadlines.tightened(trusted.deadlines),
    )


def _stricter(wanted: Safety, trusted: Safety) -> Safety:
    def low(a: float | None, b: float | None) -> float | None:
        return b if a is None else a if b is None else min(a, b)

    def low_int(a: int | None, b: int | None) -> int | None:
        return b if a is None else a if b is None else min(a, b)

    return Safety(
        max_changes=low_int(wanted.max_changes, trusted.max_changes),
        max_changes_percent=low(wanted.max_changes_percent, trusted.max_changes_percent),
        max_deletes=low_int(wanted.max_deletes, trusted.max_deletes),
        max_deletes_percent=low(wanted.max_deletes_percent, trusted.max_deletes_percent),
    )


def load_against_base(
    path: str | Path, base: str, *, allowed_hosts: Sequence[str] | None = None
) -> tuple[DesiredState, DesiredState]:
    """The configuration at `path` under the settings of the base `base` (a
    directory or a git ref), and the base configuration itself. A problem of
    the base is reported as `--base REF: ...` (the base is not for the pull
    request to fix, but the run cannot be judged without it)."""
    load, trusted = open_against_base(path, base, allowed_hosts=allowed_hosts)
    return load.finish(), trusted


def open_against_base(
    path: str | Path, base: str, *, allowed_hosts: Sequence[str] | None = None
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
        trusted=lambda settings: narrow_settings(settings, trusted.settings),
    )
    return load, trusted


def _inside(file: str, base_path: Path) -> str:
    """An issue's file named relative to the base, not the temporary copy."""
    root = base_path if base_path.is_dir() else base_path.parent
    try:
        return str(Path(os.path.abspath(file)).relative_to(root.resolve()))
    except ValueError:
        return file
