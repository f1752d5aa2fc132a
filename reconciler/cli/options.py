"""Options shared by the commands that talk to tenants."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from reconciler.config.base import TrustedBase

FuncT = Callable[..., Any]
TODAY_VARIABLE = "QLIK_EMAIL_TODAY"


def today_from_env() -> date:
    """Today, or the date in QLIK_EMAIL_TODAY (YYYY-MM-DD): tests, and a look at
    which ignore rules and pauses will have ended by a given day."""
    text = os.environ.get(TODAY_VARIABLE, "").strip()
    if not text:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        message = f"{TODAY_VARIABLE} must be a date like 2026-12-31, got {text!r}"
        raise click.UsageError(message) from None


def fleet_options(func: FuncT) -> FuncT:
    """PATH, --tenant, --shard, --concurrency, --progress."""
    decorators = [
        click.argument("path", required=False, default=".", type=click.Path()),
        click.option(
            "--tenant",
            "tenants",
            multiple=True,
            metavar="NAME",
            help="Only this tenant (a name or a glob; repeatable).",
        ),
        click.option(
            "--shard",
            metavar="I/N",
            help="Only the I-th of N stable partitions of the tenants (by name).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 1024),
            help="Tenants in flight at once (default: settings.concurrency, 64).",
        ),
        click.option(
            "--progress/--no-progress",
            default=None,
            help="Progress on stderr (default: only on a TTY).",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def format_option(func: FuncT) -> FuncT:
    """--format text|json|markdown."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json", "markdown"]),
        default="text",
        show_default=True,
        help="Report format on stdout.",
    )(func)


def drift_format_option(func: FuncT) -> FuncT:
    """--format text|json|markdown|html|csv (drift reports: the fleet views too)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json", "markdown", "html", "csv"]),
        default="text",
        show_default=True,
        help="Report format on stdout (html and csv: drift reports only).",
    )(func)


def fleet_view_options(func: FuncT) -> FuncT:
    """--html FILE and --csv FILE: the fleet page and table as well."""
    func = click.option(
        "--csv",
        "csv_file",
        type=click.Path(dir_okay=False),
        help="Also write one CSV row per tenant to FILE (for a spreadsheet or a Qlik app).",
    )(func)
    return click.option(
        "--html",
        "html_file",
        type=click.Path(dir_okay=False),
        help="Also write the fleet page (one self-contained HTML file) to FILE.",
    )(func)


def markdown_option(func: FuncT) -> FuncT:
    """--markdown FILE: the Markdown report as well, whatever --format prints."""
    return click.option(
        "--markdown",
        "markdown_file",
        type=click.Path(dir_okay=False),
        help="Also write the Markdown report to FILE (for a PR comment or a job summary).",
    )(func)


def base_option(func: FuncT) -> FuncT:
    """--base REV and --base-dir DIR: the trusted configuration a pull request is
    judged by, given to the command as one `base` (a `TrustedBase`, or None)."""

    @functools.wraps(func)
    def command(*args: Any, base: str | None, base_dir: str | None, **kwargs: Any) -> Any:
        return func(*args, base=trusted_base(base, base_dir), **kwargs)

    command = click.option(
        "--base-dir",
        metavar="DIR",
        type=click.Path(file_okay=False, exists=True),
        help="A trusted copy of the configuration in a directory outside the pull "
        "request's checkout, instead of --base (not for workflows: use --base).",
    )(command)
    return click.option(
        "--base",
        metavar="REV",
        help="The trusted configuration: a git revision of this repository (never "
        "a directory). Security settings come from it, and a tenant whose url or "
        "credentials differ from it is not contacted. For pull requests (docs/security.md).",
    )(command)


def trusted_base(revision: str | None, directory: str | None) -> TrustedBase | None:
    """The `TrustedBase` of --base and --base-dir (at most one of them)."""
    if revision is None and directory is None:
        return None
    if revision is not None and directory is not None:
        raise click.UsageError("--base and --base-dir exclude each other: give one")
    # Here only: the base brings tarfile, tempfile and subprocess.
    from reconciler.config.base import TrustedBase

    if directory is not None:
        return TrustedBase(directory=Path(directory))
    return TrustedBase(revision=revision)


def state_option(func: FuncT) -> FuncT:
    """--state FILE|git, --state-remote, --state-ref: the record of what apply
    last applied (`engine.applied`), in a file or on a ref of the repository's remote."""
    decorators = [
        click.option(
            "--state",
            "state_file",
            metavar="FILE|git",
            type=click.Path(dir_okay=False),
            help="The record of the secret references apply last applied: a secret whose "
            "reference or rotation marker differs from it is re-sent. `git`: the record is "
            "kept on a ref of the configuration repository's remote (--state-remote, "
            "--state-ref); else a local FILE (created if missing; ./git for a file of that "
            "name). apply updates it; plan and drift only read it.",
        ),
        click.option(
            "--state-remote",
            metavar="NAME",
            help="With --state git: the remote holding the record (default: origin).",
        ),
        click.option(
            "--state-ref",
            metavar="REF",
            help="With --state git: the ref holding the record (default: "
            "refs/heads/qlik-email-state; a short name is a branch).",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def allowed_hosts_from_env() -> list[str] | None:
    """QLIK_EMAIL_ALLOWED_HOSTS (comma-separated host globs), which replaces
    settings.allowedHosts: CI sets it outside the repository a pull request edits."""
    value = os.environ.get("QLIK_EMAIL_ALLOWED_HOSTS")
    if value is None:
        return None
    return [host.strip() for host in value.split(",") if host.strip()]
