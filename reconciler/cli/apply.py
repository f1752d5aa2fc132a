"""`qlik-email apply`: converge tenants to the configuration, verify, and report."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

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
from reconciler.cli.common import apply_exit_code, apply_output, emit, load_engine
from reconciler.cli.options import fleet_options, format_option, markdown_option, state_option
from reconciler.engine import ApplyHooks, ApplyOptions, WaveSize
from reconciler.engine.applied import load_record, save_record, updated_record
from reconciler.engine.planfile import is_plan_file, load_plan
from reconciler.errors import PlanFileError, ReconcilerError
from reconciler.model import Plan
from reconciler.report.plan import render_plan_text


@click.command()
@fleet_options
@format_option
@markdown_option
@click.option(
    "--config",
    "config_path",
    type=click.Path(),
    help="Config repository, when PATH is a saved plan (default: the current "
    "directory); it must be the one the plan was made from.",
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
@state_option
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
@click.option(
    "--wave",
    metavar="N|N%",
    callback=lambda _ctx, _param, value: _wave(value),
    help="Apply N tenants (or N% of those to change) at a time; after a wave "
    "with a failure, stop (exit 3) and skip the rest.",
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
    state_file: str | None,
    test_email: str | None,
    report_file: str | None,
    wave: WaveSize | None,
) -> int:
    """Apply the configuration at PATH, or the plan saved in PATH by `plan --out`.

    Per tenant: PUT (or DELETE), verify-connection, then a read-back that must plan
    as no-op. Exit 0 when every change was applied and verified, 3 when some tenant
    failed (see the report), 1 when nothing could start, 130/143 when interrupted.

    With --wave N (or N%), tenants are applied N at a time, in name order, and a
    wave with a failed or verify-failed tenant stops the rollout (exit 3).

    With --state FILE, a secret whose reference or rotation marker differs from
    the record of the last apply is re-sent, and FILE is then updated for the
    tenants that ended applied.
    """
    saved = load_plan(Path(path)) if is_plan_file(Path(path)) else None
    if saved is not None:
        # The configuration is the one apply runs in (or --config), never a path
        # the plan file names: a plan file is data, and may come from elsewhere.
        if config_path is None:
            _check_here(saved, path)
        path = config_path or "."
        if rotate_secrets:
            err("Note: --rotate-secrets has no effect with a saved plan; plan with it instead.")
    engine = load_engine(state, path, tenants, shard, concurrency, progress, allow_commands=True)
    if saved is not None:
        _check_origin(saved, str(engine.selection.desired.root))
    if state_file is not None:
        engine.record = load_record(Path(state_file))
    options = ApplyOptions(
        recheck=saved is not None or not auto_approve,
        test_email=test_email,
        allow_delete=allow_delete,
        force=force,
        rotate_secrets=rotate_secrets and saved is None,
        wave=wave,
    )
    hooks = _Hooks(
        state, show=saved is None and fmt == "text", ask=saved is None and not auto_approve
    )
    run = engine.apply(options, saved=saved, hooks=hooks, handle_signals=True)
    if run.report is None:
        err("Apply cancelled.")
        return EXIT_ERROR
    if state_file is not None and engine.record is not None:
        record = updated_record(engine.record, engine.tenants, run.report)
        save_record(Path(state_file), record)
    rendered = apply_output(run.report)
    # Paused tenants are listed even when nothing else is to be done.
    quiet = run.nothing_to_do and not run.plan.paused
    if quiet:
        out("Nothing to apply: every tenant already matches the configuration.\n")
    emit(
        state,
        rendered,
        fmt,
        json_file=report_file,
        markdown_file=markdown_file,
        show=not quiet,
    )
    if run.nothing_to_do:
        return EXIT_OK
    if run.signal is not None:
        return EXIT_INTERRUPTED if run.signal == signal.SIGINT else EXIT_TERMINATED
    return apply_exit_code(run.report)


def _wave(value: str | None) -> WaveSize | None:
    """`--wave N` or `--wave N%` (1-100)."""
    if value is None:
        return None
    text = value.strip()
    percent = text.endswith("%")
    number = text.removesuffix("%").strip()
    if not number.isdigit() or int(number) < 1 or (percent and int(number) > 100):
        raise click.BadParameter(
            f"{value!r}: give a number of tenants (such as 10) or a percentage of the "
            "tenants to change (such as 5%, at most 100%)",
            param_hint="--wave",
        )
    return WaveSize(int(number), percent)


def _check_here(plan: Plan, plan_file: str) -> None:
    """Without --config, refuse a plan made elsewhere before looking for a
    configuration here: say where the plan comes from, and how to name it."""
    root = plan.config_root
    if root is not None and Path(root) != Path.cwd().resolve():
        raise PlanFileError(
            f"{plan_file} was made from the configuration at {root}, and apply runs in "
            f"{Path.cwd()}: run apply in {root}, or pass --config {root} (a saved plan "
            "applies only to the repository it was made from)"
        )


def _check_origin(plan: Plan, root: str) -> None:
    """Refuse a plan made from another configuration repository than `root`."""
    if plan.config_root is not None and plan.config_root != root:
        raise PlanFileError(
            f"this plan was made from the configuration at {plan.config_root}, not {root}: "
            "a saved plan applies only to the repository it was made from; run apply "
            "there (or name it with --config) after reviewing it"
        )


class _Hooks(ApplyHooks):
    """Print the plan (text format), ask for confirmation (interactive runs), and
    say what happens when a signal arrives."""

    def __init__(self, state: State, *, show: bool, ask: bool) -> None:
        self.state, self.show, self.ask = state, show, ask

    def planned(self, plan: Plan) -> None:
        if self.show:
            color = self.state.use_color(sys.stdout)
            out(render_plan_text(plan, color=color), color=color)

    def confirm(self, plan: Plan) -> bool:
        if not self.ask:
            return True
        if not sys.stdin.isatty():
            raise ReconcilerError(
                "refusing to apply without confirmation: stdin is not a terminal. "
                "Review the plan and pass --auto-approve, or apply a saved plan file."
            )
        answer = click.prompt(
            "Do you want to apply these changes? Only 'yes' is accepted",
            default="",
            show_default=False,
        )
        return bool(answer.strip() == "yes")

    def stopping(self, signum: int) -> None:
        err(
            f"\nReceived {signal.Signals(signum).name}: starting no new tenant, "
            "finishing those in flight, then reporting."
        )
