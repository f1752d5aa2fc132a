"""Options shared by the commands that talk to tenants."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from typing import Any

import click

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


def markdown_option(func: FuncT) -> FuncT:
    """--markdown FILE: the Markdown report as well, whatever --format prints."""
    return click.option(
        "--markdown",
        "markdown_file",
        type=click.Path(dir_okay=False),
        help="Also write the Markdown report to FILE (for a PR comment or a job summary).",
    )(func)


def base_option(func: FuncT) -> FuncT:
    """--base REF_OR_DIR: the trusted configuration a pull request is judged by."""
    return click.option(
        "--base",
        metavar="REF_OR_DIR",
        help="The trusted configuration (a git ref of this repository, or a directory): "
        "security settings come from it, and a tenant whose url or credentials differ "
        "from it is not contacted. For pull requests (docs/security.md).",
    )(func)


def state_option(func: FuncT) -> FuncT:
    """--state FILE: the record of what apply last applied (`engine.applied`)."""
    return click.option(
        "--state",
        "state_file",
        metavar="FILE",
        type=click.Path(dir_okay=False),
        help="The record of the secret references apply last applied (created if "
        "missing): a secret whose reference or rotation marker differs from it is "
        "re-sent. apply updates it; plan only reads it.",
    )(func)


def allowed_hosts_from_env() -> list[str] | None:
    """QLIK_EMAIL_ALLOWED_HOSTS (comma-separated host globs), which replaces
    settings.allowedHosts: CI sets it outside the repository a pull request edits."""
    value = os.environ.get("QLIK_EMAIL_ALLOWED_HOSTS")
    if value is None:
        return None
    return [host.strip() for host in value.split(",") if host.strip()]
