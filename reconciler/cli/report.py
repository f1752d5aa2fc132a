"""`qlik-email report merge`: one report from the JSON reports of N shards."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, cast

import click

from reconciler.cli.app import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, State, err, out
from reconciler.cli.common import write_json, write_text
from reconciler.cli.options import format_option, markdown_option

if TYPE_CHECKING:
    from reconciler.applier import ApplyReport
    from reconciler.drift import DriftReport
    from reconciler.model import Plan
    from reconciler.report.merge import MergedReport, Source

EXIT_PARTIAL = 3  # as `apply`: not every tenant converged


@click.group()
def report() -> None:
    """Work with the JSON reports of plan, apply and drift."""


@report.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@format_option
@markdown_option
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    help="Also write the merged JSON report to FILE.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Plans: exit 2 when there are changes, as `plan --detailed-exitcode`.",
)
@click.option(
    "--partial",
    is_flag=True,
    help="Merge even when some of the N shards are missing.",
)
@click.pass_obj
def merge(
    state: State,
    files: tuple[str, ...],
    fmt: str,
    markdown_file: str | None,
    out_file: str | None,
    detailed_exitcode: bool,
    partial: bool,
) -> int:
    """Merge the JSON reports of shards (plan, apply or drift; all of one kind) into one.

    Each FILE is what `plan --format json` / `--out`, `apply --report` or
    `drift --report` wrote for one `--shard I/N`. The tenants must not overlap.
    The summary (and the drift fingerprint) is computed again from the tenants.
    Exit codes are those of the command that made the reports: plan 0 (or 2 with
    --detailed-exitcode when there are changes), drift 2 when not clean, apply 3
    when not every tenant converged, and 1 when a tenant could not be read.
    """
    from reconciler.errors import ReportFileError
    from reconciler.report.merge import merge_reports, shard_problem

    merged = merge_reports([_read(path) for path in files])
    problem = shard_problem(merged.shards)
    if problem and not partial:
        raise ReportFileError(f"{problem}: pass --partial to merge what there is")
    if problem:
        err(f"Warning: {problem}; the merged report covers only the shards given.")
    if out_file:
        write_json(out_file, merged.document)
    if markdown_file:
        write_text(markdown_file, _render(merged, "markdown", color=False))
    out(_render(merged, fmt, color=state.use_color(sys.stdout)))
    return _exit_code(merged, detailed_exitcode)


def _read(path: str) -> Source:
    import json

    from reconciler.errors import ReportFileError
    from reconciler.report.merge import Source

    try:
        with open(path, encoding="utf-8") as handle:
            return Source(path, json.load(handle))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReportFileError(f"{path}: cannot read the report: {exc}") from None


def _render(merged: MergedReport, fmt: str, *, color: bool) -> str:
    from reconciler.report.style import dumps

    if fmt == "json":
        return dumps(merged.document)
    if merged.kind == "apply":
        from reconciler.report.apply import render_apply_markdown, render_apply_text

        applied = cast("ApplyReport", merged.report)
        if fmt == "markdown":
            return render_apply_markdown(applied)
        return render_apply_text(applied, color=color)
    if merged.kind == "drift":
        from reconciler.report.drift import render_drift_markdown, render_drift_text

        drifted = cast("DriftReport", merged.report)
        if fmt == "markdown":
            return render_drift_markdown(drifted)
        return render_drift_text(drifted, color=color)
    from reconciler.report.plan import render_plan_markdown, render_plan_text

    plan = cast("Plan", merged.report)
    return render_plan_markdown(plan) if fmt == "markdown" else render_plan_text(plan, color=color)


def _exit_code(merged: MergedReport, detailed_exitcode: bool) -> int:
    if merged.kind == "apply":
        return EXIT_OK if cast("ApplyReport", merged.report).ok else EXIT_PARTIAL
    if merged.kind == "drift":
        drifted = cast("DriftReport", merged.report)
        if any(t.error for t in drifted.tenants):
            return EXIT_ERROR
        return EXIT_OK if drifted.clean else EXIT_CHANGES
    plan = cast("Plan", merged.report)
    if plan.errors:
        err(f"Error: {len(plan.errors)} tenant(s) could not be read; see the report.")
        return EXIT_ERROR
    return EXIT_CHANGES if detailed_exitcode and plan.has_changes else EXIT_OK
