"""Steps shared by the commands that talk to tenants: building the engine,
drawing progress, writing and printing reports, and exit codes."""

from __future__ import annotations

import os
import sys
import time
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
    State,
    err,
    out,
    scrubbed,
    visible,
    workflow_command,
)
from reconciler.cli.options import allowed_hosts_from_env, today_from_env
from reconciler.documents.apply import apply_document
from reconciler.documents.drift import drift_document
from reconciler.documents.plan import plan_document
from reconciler.engine import Engine
from reconciler.engine.applier import ApplyReport
from reconciler.engine.drift import DriftReport
from reconciler.engine.fleet import Phase
from reconciler.model import Plan
from reconciler.report import escape
from reconciler.report.apply import render_apply_markdown, render_apply_text
from reconciler.report.drift import render_drift_markdown, render_drift_text
from reconciler.report.fleet import render_drift_csv
from reconciler.report.github import add_mask_commands, in_github_actions
from reconciler.report.page import render_drift_html
from reconciler.report.plan import render_plan_markdown, render_plan_text
from reconciler.report.style import dumps
from reconciler.secrets import ResolvePolicy, SecretResolver

if TYPE_CHECKING:
    from reconciler.config.base import TrustedBase


class ProgressPrinter:
    """Progress on stderr: a live counter on a TTY; on a pipe (when asked for with
    --progress) a line per tenant while applying, or periodic counts otherwise.

    Cheap at 10,000 tenants: the TTY counter is redrawn at most every
    `TTY_REFRESH_S` (and once at the end), the periodic counts every `PIPE_REFRESH_S`.
    """

    TTY_REFRESH_S = 0.1
    PIPE_REFRESH_S = 5.0
    LABELS = {Phase.READ: "Reading tenants", Phase.APPLY: "Applying", Phase.VERIFY: "Verifying"}

    def __init__(self, flag: bool | None) -> None:
        """`flag`: --progress (True), --no-progress (False) or neither (None: a TTY only)."""
        self.tty = sys.stderr.isatty()
        self.wanted = flag is True or (flag is None and self.tty)
        self.begin(Phase.READ, 0)

    def begin(self, phase: Phase, total: int) -> None:
        """Start counting the `total` tenants of `phase`."""
        self.enabled = self.wanted and total > 1
        self.per_tenant = phase is Phase.APPLY
        self.total, self.label = total, self.LABELS[phase]
        self.done = self.failed = 0
        self._last = time.monotonic()

    def step(self, tenant: str, outcome: str, failed: bool) -> None:
        """One tenant is through the phase."""
        self.done += 1
        self.failed += failed
        if not self.enabled:
            return
        finished = self.done == self.total
        if self.tty or not self.per_tenant:
            now = time.monotonic()
            interval = self.TTY_REFRESH_S if self.tty else self.PIPE_REFRESH_S
            if not finished and now - self._last < interval:
                return
            self._last = now
            counts = f"{self.label}: {self.done}/{self.total} ({self.failed} failed)"
            if self.tty:
                click.echo(f"\r{counts}", nl=finished, err=True)
            else:
                click.echo(counts, err=True)
        else:
            err(f"{self.label}: [{self.done}/{self.total}] {escape.terminal(tenant)}: {outcome}")


def load_engine(
    state: State,
    path: str,
    patterns: tuple[str, ...],
    shard: str | None,
    concurrency: int | None,
    progress: bool | None,
    *,
    allow_commands: bool,
    base: TrustedBase | None = None,
    stream: bool = False,
) -> Engine:
    """The engine of a command on the configuration at `path` (`Engine.load`).
    Reading commands (plan, drift) neither run commands nor read files outside
    the repository, and load the tenant files while they read the first
    tenants (`stream`); apply may do both, and loads everything first. With
    `base` (a git revision, or explicitly a directory), the base's security settings apply and
    tenants it does not vouch for are not read.

    In GitHub Actions every secret value is masked (`::add-mask::`) the moment
    it is resolved; the run's scrubber learns them all, so that the log, `out`,
    `err` and the report files scrub them, in every spelling, from what they write."""
    return Engine.load(
        path,
        tenants=patterns,
        shard=shard,
        concurrency=concurrency,
        allowed_hosts=allowed_hosts_from_env(),
        allow_commands=allow_commands,
        on_resolve=_masking(),
        scrubber=state.scrubber,
        progress=ProgressPrinter(progress),
        base=base,
        stream=stream,
        today=today_from_env(),
    )


def secret_resolver(state: State, base_dir: Path, *, allow_commands: bool) -> SecretResolver:
    """A resolver as `load_engine` builds it, for commands that build their
    engine themselves (import): relative `${file:...}` paths start at `base_dir`."""
    policy = ResolvePolicy.for_repository(base_dir, allow_commands=allow_commands)
    return SecretResolver(policy, on_resolve=_masking(), scrubber=state.scrubber)


def _masking() -> Callable[[str], None] | None:
    """What hears every resolved value: `_mask` in GitHub Actions, else nothing."""
    return _mask if in_github_actions(os.environ) else None


def _mask(value: str) -> None:
    """In GitHub Actions, every value is masked (`::add-mask::`) once resolved."""
    for command in add_mask_commands(value):
        # The runner reads workflow commands from stderr as well as stdout, and
        # stdout carries only the report (`--format json > plan.json` stays JSON).
        workflow_command(command)


def scrubbed_document(value: Any) -> Any:
    """A JSON-ready `value` with every string in it scrubbed (`scrubbed`): the
    document stays valid JSON whatever a secret's spelling. Each distinct
    string is scrubbed once: a fleet's document repeats its keys and most
    values (field names, actions, providers, hosts) for every tenant, and the
    scrubber learns nothing while the document is walked. The walk tells the
    plain JSON types apart by their exact type, and leaves a dict's scalar
    values without a call of their own: a fleet's document has half a million
    of them (bench/NOTES.md, "JSON documents")."""
    done: dict[str, str] = {}

    def clean(text: str) -> str:
        found = done.get(text)
        if found is None:
            found = done[text] = scrubbed(text)
        return found

    def walk(value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            copy = {}
            for key, item in value.items():
                kind = type(item)
                if kind is str:
                    item = done.get(item) or clean(item)
                elif not (item is None or kind is int or kind is bool):
                    item = walk(item)
                key = done.get(key) or clean(key) if type(key) is str else clean(str(key))
                copy[key] = item
            return copy
        if kind is list or kind is tuple:
            return [walk(item) for item in value]
        if isinstance(value, str):  # a str, or a str enum
            return clean(value)
        if isinstance(value, dict):
            return walk(dict(value))
        if isinstance(value, (list, tuple)):
            return [walk(item) for item in value]
        return value

    return walk(value)


def write_json(path: str, document: dict[str, Any]) -> None:
    """Write a JSON report or plan file, scrubbed of every secret of the run."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dumps(scrubbed_document(document)), encoding="utf-8")


def write_text(path: str, text: str) -> None:
    """Write a rendered report (e.g. Markdown for a job summary) to `path`,
    scrubbed of every secret of the run."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(visible(scrubbed(text)), encoding="utf-8")


@dataclass(frozen=True)
class Rendered:
    """One report in every form (callables, so that a form nobody asked for is
    never built): the JSON document, Markdown, and text (with or without colour);
    drift reports also the fleet page (`html`) and table (`csv`)."""

    document: Callable[[], dict[str, Any]]
    markdown: Callable[[], str]
    text: Callable[[bool], str]
    html: Callable[[], str] | None = None
    csv: Callable[[], str] | None = None

    def view(self, kind: str) -> str:
        """The fleet page (`html`) or table (`csv`); a usage error for a report
        that has none (plans and apply reports)."""
        render = self.html if kind == "html" else self.csv
        if render is None:
            raise click.UsageError(f"--{kind} and --format {kind} are for drift reports only")
        return render()


def emit(
    state: State,
    report: Rendered,
    fmt: str,
    *,
    json_file: str | None = None,
    markdown_file: str | None = None,
    html_file: str | None = None,
    csv_file: str | None = None,
    show: bool = True,
) -> None:
    """Write the report files asked for, then (if `show`) print it in `fmt`."""
    if (html_file or csv_file or fmt in ("html", "csv")) and report.html is None:
        report.view("html")  # the usage error, before any file is written
    if json_file:
        write_json(json_file, report.document())
    if markdown_file:
        write_text(markdown_file, report.markdown())
    if html_file:
        write_text(html_file, report.view("html"))
    if csv_file:
        write_text(csv_file, report.view("csv"))
    if not show:
        return
    if fmt == "json":
        out(dumps(scrubbed_document(report.document())))
    elif fmt == "markdown":
        out(report.markdown())
    elif fmt in ("html", "csv"):
        out(report.view(fmt))
    else:
        color = state.use_color(sys.stdout)
        out(report.text(color), color=color)


def plan_output(plan: Plan) -> Rendered:
    """A plan in every form."""
    return Rendered(
        lambda: plan_document(plan),
        lambda: render_plan_markdown(plan),
        lambda color: render_plan_text(plan, color=color),
    )


def apply_output(report: ApplyReport) -> Rendered:
    """An apply report in every form."""
    return Rendered(
        lambda: apply_document(report),
        lambda: render_apply_markdown(report),
        lambda color: render_apply_text(report, color=color),
    )


def drift_output(report: DriftReport) -> Rendered:
    """A drift report in every form."""
    return Rendered(
        lambda: drift_document(report),
        lambda: render_drift_markdown(report),
        lambda color: render_drift_text(report, color=color),
        lambda: render_drift_html(report),
        lambda: render_drift_csv(report),
    )


def _unreadable(count: int) -> int:
    """The exit code, and the same message, for tenants that could not be read."""
    err(f"Error: {count} tenant(s) could not be read; see the report.")
    return EXIT_ERROR


def plan_exit_code(plan: Plan, detailed_exitcode: bool) -> int:
    """1 when a tenant could not be read, 2 for changes with --detailed-exitcode, else 0."""
    if plan.errors:
        return _unreadable(len(plan.errors))
    return EXIT_CHANGES if detailed_exitcode and plan.has_changes else EXIT_OK


def apply_exit_code(report: ApplyReport) -> int:
    """1 when a tenant could not be read (as plan), 3 when a change failed, else 0."""
    if report.not_read:
        return _unreadable(len(report.not_read))
    return EXIT_OK if report.ok else EXIT_PARTIAL


def drift_exit_code(report: DriftReport) -> int:
    """1 when a tenant could not be read, 2 for drift or unhealthy tenants, else 0."""
    unreadable = sum(1 for t in report.tenants if t.error)
    if unreadable:
        return _unreadable(unreadable)
    return EXIT_OK if report.clean else EXIT_CHANGES
