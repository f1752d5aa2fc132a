"""Steps shared by the commands that talk to tenants."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.app import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PARTIAL,
    ProgressPrinter,
    State,
    err,
    out,
)
from reconciler.model import DesiredState, TenantSpec

if TYPE_CHECKING:
    from reconciler.applier import ApplyReport
    from reconciler.client import ClientOptions
    from reconciler.drift import DriftReport
    from reconciler.model import LiveState, Plan
    from reconciler.secrets import SecretResolver


@dataclass(frozen=True)
class Selection:
    """The loaded configuration and the tenants this run works on."""

    desired: DesiredState
    tenants: tuple[TenantSpec, ...]
    concurrency: int
    shard: str | None


def select(
    path: str, patterns: tuple[str, ...], shard: str | None, concurrency: int | None
) -> Selection:
    """Load and validate the configuration, then pick the tenants of this run."""
    from reconciler.config import load_config

    desired = load_config(path, allowed_hosts=allowed_hosts_from_env(), prepare=prepare_for_reading)
    from reconciler.fleet import parse_shard, select_tenants

    parsed = parse_shard(shard) if shard else None
    tenants = select_tenants(desired.tenants, patterns, parsed)
    return Selection(desired, tenants, concurrency or desired.settings.concurrency, shard)


def prepare_for_reading() -> None:
    """What reading tenants needs before the first request, done while the tenant
    files are being validated (by other processes, on a large repository):
    importing the HTTP stack, including the modules httpx imports only on its
    first connection. Nothing here touches the network."""
    import importlib

    importlib.import_module("reconciler.parallel")
    for name in ("httpcore", "anyio._backends._asyncio"):
        with contextlib.suppress(ImportError):  # a layout change costs time, nothing else
            importlib.import_module(name)


def allowed_hosts_from_env() -> list[str] | None:
    """QLIK_EMAIL_ALLOWED_HOSTS (comma-separated host globs), which replaces
    settings.allowedHosts: CI sets it outside the repository a pull request edits."""
    value = os.environ.get("QLIK_EMAIL_ALLOWED_HOSTS")
    if value is None:
        return None
    return [host.strip() for host in value.split(",") if host.strip()]


def resolver(state: State, selection: Selection, *, allow_cmd: bool) -> SecretResolver:
    """A resolver for this run. Reading commands (plan, drift) neither run commands
    nor read files outside the config repository; apply may do both."""
    return resolver_at(state, selection.desired.root, allow_cmd=allow_cmd)


def resolver_at(state: State, base_dir: Path, *, allow_cmd: bool) -> SecretResolver:
    """A resolver whose relative `${file:...}` paths start at `base_dir`. In GitHub
    Actions every value is masked (`::add-mask::`) the moment it is resolved."""
    from reconciler.report.github import in_github_actions
    from reconciler.secrets import ResolvePolicy, SecretResolver

    policy = ResolvePolicy(base_dir=base_dir, allow_cmd=allow_cmd, confine_files=not allow_cmd)
    result = SecretResolver(policy, on_resolve=_mask if in_github_actions(os.environ) else None)
    # The log filter asks for these at logging time: every resolved value is redacted.
    state.secret_values = result.known_values
    return result


def _mask(value: str) -> None:
    from reconciler.report.github import add_mask_commands

    for command in add_mask_commands(value):
        # The runner reads workflow commands from stderr as well as stdout, and
        # stdout carries only the report (`--format json > plan.json` stays JSON).
        click.echo(command, err=True)


def client_options(selection: Selection) -> ClientOptions:
    from reconciler.client import ClientOptions

    return ClientOptions(
        timeout_s=selection.desired.settings.timeout_s,
        connections=selection.concurrency,
    )


def progress_printer(
    selection: Selection,
    label: str,
    flag: bool | None,
    *,
    per_tenant: bool = False,
    total: int | None = None,
) -> ProgressPrinter:
    """The progress display for this run (--progress / --no-progress / auto)."""
    count = len(selection.tenants) if total is None else total
    return ProgressPrinter.for_flag(count, label, flag, per_tenant)


def write_json(path: str, document: dict[str, Any]) -> None:
    """Write a JSON report or plan file (it holds no secret value)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_text(path: str, text: str) -> None:
    """Write a rendered report (e.g. Markdown for a job summary) to `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def read_tenants(
    selection: Selection,
    secrets: SecretResolver,
    flag: bool | None,
) -> dict[str, LiveState | str]:
    """Every selected tenant's live state, or why it could not be read (large
    fleets are read by several processes: see reconciler.parallel)."""
    from reconciler.parallel import read_fleet

    return read_fleet(
        selection.tenants,
        secrets,
        client_options(selection),
        concurrency=selection.concurrency,
        progress=progress_printer(selection, "Reading tenants", flag),
    )


@dataclass(frozen=True)
class Rendered:
    """One report in every form: the JSON document and how to render the rest
    (callables, so that a form nobody asked for is never built)."""

    document: dict[str, Any]
    markdown: Callable[[], str]
    text: Callable[[bool], str]


def emit(
    state: State,
    report: Rendered,
    fmt: str,
    *,
    json_file: str | None = None,
    markdown_file: str | None = None,
    show: bool = True,
) -> None:
    """Write the report files asked for, then (if `show`) print it in `fmt`."""
    from reconciler.report.style import dumps

    if json_file:
        write_json(json_file, report.document)
    if markdown_file:
        write_text(markdown_file, report.markdown())
    if not show:
        return
    if fmt == "json":
        out(dumps(report.document))
    elif fmt == "markdown":
        out(report.markdown())
    else:
        out(report.text(state.use_color(sys.stdout)))


def plan_output(plan: Plan, document: dict[str, Any]) -> Rendered:
    """A plan in every form."""
    from reconciler.report import render_plan_markdown, render_plan_text

    return Rendered(
        document, lambda: render_plan_markdown(plan), lambda c: render_plan_text(plan, color=c)
    )


def apply_output(report: ApplyReport, document: dict[str, Any]) -> Rendered:
    """An apply report in every form."""
    from reconciler.report.apply import render_apply_markdown, render_apply_text

    return Rendered(
        document,
        lambda: render_apply_markdown(report),
        lambda color: render_apply_text(report, color=color),
    )


def drift_output(report: DriftReport, document: dict[str, Any]) -> Rendered:
    """A drift report in every form."""
    from reconciler.report.drift import render_drift_markdown, render_drift_text

    return Rendered(
        document,
        lambda: render_drift_markdown(report),
        lambda color: render_drift_text(report, color=color),
    )


def plan_exit_code(plan: Plan, detailed_exitcode: bool) -> int:
    """1 when a tenant could not be read, 2 for changes with --detailed-exitcode, else 0."""
    if plan.errors:
        err(f"Error: {len(plan.errors)} tenant(s) could not be read; see the report.")
        return EXIT_ERROR
    return EXIT_CHANGES if detailed_exitcode and plan.has_changes else EXIT_OK


def apply_exit_code(report: ApplyReport) -> int:
    """0 when every change was applied and verified, 3 otherwise."""
    return EXIT_OK if report.ok else EXIT_PARTIAL


def drift_exit_code(report: DriftReport) -> int:
    """1 when a tenant could not be read, 2 for drift or unhealthy tenants, else 0."""
    if any(t.error for t in report.tenants):
        return EXIT_ERROR
    return EXIT_OK if report.clean else EXIT_CHANGES
