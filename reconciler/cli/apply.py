"""`qlik-email apply`: converge tenants to the configuration, verify, and report."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli.app import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    State,
    err,
    out,
)
from reconciler.cli.common import (
    Selection,
    apply_exit_code,
    apply_output,
    client_options,
    emit,
    progress_printer,
    read_tenants,
    resolver,
    select,
)
from reconciler.cli.options import fleet_options, format_option, markdown_option

if TYPE_CHECKING:
    from reconciler.applier import ApplyOptions, ApplyReport
    from reconciler.model import Plan
    from reconciler.secrets import SecretResolver


@click.command()
@fleet_options
@format_option
@markdown_option
@click.option(
    "--config",
    "config_path",
    type=click.Path(),
    help="Config repository, when PATH is a saved plan.",
)
@click.option("--auto-approve", is_flag=True, help="Apply without asking (CI).")
@click.option(
    "--allow-delete",
    is_flag=True,
    help="Allow deleting tenants' e-mail configuration (email: absent).",
)
@click.option(
    "--force", is_flag=True, help="Apply even past the safety thresholds in settings.safety."
)
@click.option(
    "--rotate-secrets",
    is_flag=True,
    help="Re-send the secrets of the selected tenants even when nothing else changed.",
)
@click.option(
    "--test-email",
    metavar="RECIPIENT",
    help="After verifying, send a test e-mail to RECIPIENT (never retried).",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False),
    help="Also write the JSON apply report to this file.",
)
@click.pass_obj
def apply(
    state: State,
    path: str,
    tenants: tuple[str, ...],
    shard: str | None,
    concurrency: int | None,
    progress: bool | None,
    fmt: str,
    markdown_file: str | None,
    config_path: str | None,
    auto_approve: bool,
    allow_delete: bool,
    force: bool,
    rotate_secrets: bool,
    test_email: str | None,
    report_file: str | None,
) -> int:
    """Apply the configuration at PATH, or the plan saved in PATH by `plan --out`.

    Per tenant: PUT (or DELETE), verify-connection, then a read-back that must plan
    as no-op. Exit 0 when every change was applied and verified, 3 when some tenant
    failed (see the report), 1 when nothing could start, 130/143 when interrupted.
    """
    from reconciler.applier import ApplyOptions, check_safety
    from reconciler.planfile import is_plan_file, load_plan

    saved = is_plan_file(Path(path))
    if saved:
        plan, root = load_plan(Path(path))
        selection = select(config_path or str(root or "."), tenants, shard, concurrency)
        plan = _restrict(plan, selection)
        if rotate_secrets:
            err("Note: --rotate-secrets has no effect with a saved plan; plan with it instead.")
    else:
        selection = select(path, tenants, shard, concurrency)
    secrets = resolver(state, selection, allow_cmd=True)
    if not saved:
        plan = _plan_now(selection, secrets, rotate_secrets, progress)
        if fmt == "text":
            out(_render_plan(state, plan))
    if not plan.has_changes and not plan.errors:
        out("Nothing to apply: every tenant already matches the configuration.\n")
        _emit(state, _unchanged(plan), fmt, (report_file, markdown_file), selection, show=False)
        return EXIT_OK
    check_safety(
        plan,
        selection.desired.settings.safety,
        fleet_size=len(selection.tenants),
        allow_delete=allow_delete,
        force=force,
    )
    if not saved and not auto_approve and not _confirm():
        err("Apply cancelled.")
        return EXIT_ERROR
    options = ApplyOptions(
        concurrency=selection.concurrency,
        recheck=saved or not auto_approve,
        test_email=test_email,
    )
    report, signum = _run(selection, plan, secrets, options, progress)
    _emit(state, report, fmt, (report_file, markdown_file), selection)
    if signum is not None:
        return EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_TERMINATED
    return apply_exit_code(report)


def _restrict(plan: Plan, selection: Selection) -> Plan:
    from reconciler.model import Plan

    names = {t.name for t in selection.tenants}
    return Plan(tuple(t for t in plan.tenants if t.tenant in names))


def _plan_now(
    selection: Selection,
    secrets: SecretResolver,
    rotate: bool,
    flag: bool | None,
) -> Plan:
    from reconciler.planner import make_plan

    live = read_tenants(selection, secrets, flag)
    rotated = {t.name for t in selection.tenants} if rotate else set()
    return make_plan(selection.tenants, live, rotate=rotated)


def _render_plan(state: State, plan: Plan) -> str:
    from reconciler.report import render_plan_text

    return render_plan_text(plan, color=state.use_color(sys.stdout))


def _confirm() -> bool:
    if not sys.stdin.isatty():
        raise click.UsageError(
            "refusing to apply without confirmation: stdin is not a terminal. "
            "Review the plan and pass --auto-approve, or apply a saved plan file."
        )
    answer = click.prompt(
        "Do you want to apply these changes? Only 'yes' is accepted", default="", show_default=False
    )
    return bool(answer.strip() == "yes")


def _run(
    selection: Selection,
    plan: Plan,
    secrets: SecretResolver,
    options: ApplyOptions,
    flag: bool | None,
) -> tuple[ApplyReport, int | None]:
    from reconciler.applier import apply_plan, specs_by_name
    from reconciler.client import ApiSession

    changed = sum(1 for t in plan.tenants if t.error is None and t.action.value != "no-op")
    ticker = progress_printer(selection, "Applying", flag, per_tenant=True, total=changed)
    received: list[int] = []

    async def go() -> ApplyReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, _on_signal, signum, stop, received)
        try:
            async with ApiSession(client_options(selection)) as session:
                return await apply_plan(
                    session,
                    plan,
                    specs_by_name(selection.tenants),
                    secrets,
                    options,
                    progress=ticker,
                    stop=stop,
                )
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    report = asyncio.run(go())
    return report, received[0] if received else None


def _on_signal(signum: int, stop: asyncio.Event, received: list[int]) -> None:
    if not received:
        err(
            f"\nReceived {signal.Signals(signum).name}: starting no new tenant, "
            "finishing those in flight, then reporting."
        )
    received.append(signum)
    stop.set()


def _emit(
    state: State,
    report: ApplyReport,
    fmt: str,
    files: tuple[str | None, str | None],
    selection: Selection,
    *,
    show: bool = True,
) -> None:
    """Write the JSON and Markdown `files` when named; print the report in `fmt`."""
    from reconciler.report.apply import apply_document

    document = apply_document(report)
    document["shard"] = selection.shard
    rendered = apply_output(report, document)
    emit(state, rendered, fmt, json_file=files[0], markdown_file=files[1], show=show)


def _unchanged(plan: Plan) -> ApplyReport:
    """The report of a run that had nothing to apply."""
    from reconciler.applier import ApplyReport, Outcome, TenantResult

    results = (TenantResult(t.tenant, t.url, t.action, Outcome.UNCHANGED) for t in plan.tenants)
    return ApplyReport(tuple(results))
