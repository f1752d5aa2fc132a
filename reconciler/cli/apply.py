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
    EXIT_PARTIAL,
    EXIT_TERMINATED,
    State,
    err,
    out,
)
from reconciler.cli.common import apply_exit_code, apply_output, emit, load_engine
from reconciler.cli.options import fleet_options, format_option, markdown_option, state_option
from reconciler.cli.record import open_store, read_record
from reconciler.config.loader import ROOT_NAMES
from reconciler.documents.plan import is_plan_file, load_plan
from reconciler.engine import ApplyHooks, ApplyOptions, WaveSize
from reconciler.engine.applied import applied_entries
from reconciler.engine.applied_store import RecordStore
from reconciler.engine.applier import ApplyReport
from reconciler.errors import PlanFileError, ReconcilerError, StateFileError
from reconciler.model import Plan, TenantSpec
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
    state_remote: str | None,
    state_ref: str | None,
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

    With --state FILE (or --state git), a secret whose reference or rotation
    marker differs from the record of the last apply is re-sent; the record is
    checked to be writable before the first write to a tenant, and is updated
    for the tenants that ended applied.
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
    store = open_store(state_file, state_remote, state_ref, path)
    if store is not None:
        engine.record = read_record(store)
    options = ApplyOptions(
        recheck=saved is not None or not auto_approve,
        test_email=test_email,
        allow_delete=allow_delete,
        force=force,
        rotate_secrets=rotate_secrets and saved is None,
        wave=wave,
    )
    hooks = _Hooks(
        state,
        show=saved is None and fmt == "text",
        ask=saved is None and not auto_approve,
        store=store,
    )
    run = engine.apply(options, saved=saved, hooks=hooks, handle_signals=True)
    if run.report is None:
        err("Apply cancelled.")
        return EXIT_ERROR
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
    if store is not None and not _recorded(store, engine.tenants, run.report):
        return EXIT_PARTIAL
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
    """Without --config, in a directory with no configuration, refuse a plan made
    elsewhere before looking for one: say where the plan comes from, and how to
    name it (a directory with a configuration is judged by `_check_origin`)."""
    root = plan.config_root
    here = Path.cwd()
    if root is None or Path(root) == here.resolve():
        return
    if not any((here / name).exists() for name in ROOT_NAMES):
        raise PlanFileError(
            f"{plan_file} was made from the configuration at {root}, and apply runs in "
            f"{Path.cwd()}: run apply in {root}, or pass --config {root} (a saved plan "
            "applies only to the repository it was made from)"
        )


def _check_origin(plan: Plan, root: str) -> None:
    """Refuse a plan made from another configuration repository than `root`: the
    same directory, or (a job of its own, in another checkout) the same
    directory of a checkout of the commit the plan was made from."""
    if plan.config_root is None or plan.config_root == root:
        return
    if plan.config_commit is not None:
        from reconciler.config.checkout import checkout_place

        here = checkout_place(root)
        if here is not None and (here.commit, here.path) == (
            plan.config_commit,
            plan.config_path,
        ):
            return
    raise PlanFileError(
        f"this plan was made from the configuration at {plan.config_root}, not {root}: "
        "a saved plan applies only to the repository it was made from (or to a "
        "checkout of the same commit); run apply there (or name it with --config) "
        "after reviewing it"
    )


def _recorded(store: RecordStore, specs: tuple[TenantSpec, ...], report: ApplyReport) -> bool:
    """Record the tenants that ended applied; False (said on stderr) when the
    record could not be written, after the tenants were."""
    entries = applied_entries(specs, report)
    if not entries:
        return True
    try:
        store.save(entries)
    except StateFileError as exc:
        err(
            f"Error: {exc}. The tenants were changed as the report shows, but the "
            f"record at {store.where} does not say so: the next apply re-sends the "
            f"secrets of the {len(entries)} tenant(s) applied."
        )
        return False
    return True


class _Hooks(ApplyHooks):
    """Print the plan (text format), ask for confirmation (interactive runs),
    claim the record before anything is written, and say what happens when a
    signal arrives."""

    def __init__(self, state: State, *, show: bool, ask: bool, store: RecordStore | None) -> None:
        self.state, self.show, self.ask, self.store = state, show, ask, store

    def planned(self, plan: Plan) -> None:
        if self.show:
            color = self.state.use_color(sys.stdout)
            out(render_plan_text(plan, color=color), color=color)

    def confirm(self, plan: Plan) -> bool:
        approved = self._approved()
        if approved and self.store is not None:
            try:
                self.store.claim()
            except StateFileError as exc:
                raise StateFileError(f"{exc}; nothing was changed") from None
        return approved

    def _approved(self) -> bool:
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
