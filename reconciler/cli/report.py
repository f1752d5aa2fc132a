"""`qlik-email report merge`: one report from the JSON reports of N shards."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from reconciler.cli.app import State, err
from reconciler.cli.common import (
    Rendered,
    apply_exit_code,
    apply_output,
    drift_exit_code,
    drift_output,
    emit,
    plan_exit_code,
    plan_output,
)
from reconciler.cli.options import format_option, markdown_option
from reconciler.engine.applier import ApplyReport
from reconciler.engine.drift import DriftReport
from reconciler.errors import ReportFileError
from reconciler.jsonfile import read_json
from reconciler.model import Plan
from reconciler.report.merge import MergedReport, Source, merge_reports, shard_problem


@click.group()
def report() -> None:
    """Work with the JSON reports of plan, apply and drift."""


@report.command(short_help="Merge the JSON reports of shards into one report.")
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
    merged = merge_reports([_read(path) for path in files])
    problem = shard_problem(merged.shards)
    if problem and not partial:
        raise ReportFileError(f"{problem}: pass --partial to merge what there is")
    if problem:
        err(f"Warning: {problem}; the merged report covers only the shards given.")
    rendered, code = _outcome(merged, detailed_exitcode)
    emit(state, rendered, fmt, json_file=out_file, markdown_file=markdown_file)
    return code


def _read(path: str) -> Source:
    try:
        return Source(path, read_json(Path(path)))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSON problems included
        raise ReportFileError(f"{path}: cannot read the report: {exc}") from None


def _outcome(merged: MergedReport, detailed_exitcode: bool) -> tuple[Rendered, int]:
    """The merged report in every form, and the exit code of the command that made it."""
    if merged.kind == "apply":
        applied = cast(ApplyReport, merged.report)
        return apply_output(applied), apply_exit_code(applied)
    if merged.kind == "drift":
        drifted = cast(DriftReport, merged.report)
        return drift_output(drifted), drift_exit_code(drifted)
    plan = cast(Plan, merged.report)
    return plan_output(plan), plan_exit_code(plan, detailed_exitcode)
