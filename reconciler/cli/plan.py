"""`qlik-email plan`: read every tenant and show what apply would change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli.app import State
from reconciler.cli.common import emit, load_engine, plan_exit_code, plan_output
from reconciler.cli.options import (
    base_option,
    fleet_options,
    format_option,
    markdown_option,
    state_option,
)
from reconciler.cli.record import open_store, read_record
from reconciler.documents.plan import is_plan_file
from reconciler.errors import ReconcilerError
from reconciler.model import Plan

if TYPE_CHECKING:
    from reconciler.config.base import TrustedBase


@click.command()
@fleet_options
@format_option
@markdown_option
@base_option
@state_option
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    help="Also save the plan as JSON (for `apply PLAN`).",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes (0: none, 1: error)."
)
@click.option(
    "--rotate-secrets",
    is_flag=True,
    help="Plan to re-send the secrets of the selected tenants even when nothing else "
    "changed (a saved plan carries it to apply).",
)
@click.pass_obj
def plan(
    state: State,
    path: str,
    tenants: tuple[str, ...],
    shard: str | None,
    concurrency: int | None,
    progress: bool | None,
    fmt: str,
    markdown_file: str | None,
    base: TrustedBase | None,
    state_file: str | None,
    state_remote: str | None,
    state_ref: str | None,
    out_file: str | None,
    detailed_exitcode: bool,
    rotate_secrets: bool,
) -> int:
    """Show what would change to make the tenants match the configuration at PATH.

    Needs only the API credentials: no e-mail secret is resolved and no command
    from the configuration is run. With --state (FILE or git), shows the secrets
    apply will re-send because they differ from what it last applied (the record
    is only read).
    """
    if is_plan_file(Path(path)):
        raise ReconcilerError(
            f"{path} is a plan saved by `plan --out`, not a configuration: show it with "
            f"`qlik-email show {path}`, or apply it with `qlik-email apply {path}`"
        )
    engine = load_engine(
        state,
        path,
        tenants,
        shard,
        concurrency,
        progress,
        allow_commands=False,
        base=base,
        stream=True,
    )
    store = open_store(state_file, state_remote, state_ref, path)
    if store is not None:
        engine.record = read_record(store)
    result = engine.plan(rotate=rotate_secrets)
    if out_file is not None:
        result = _placed(result, path)
    emit(state, plan_output(result), fmt, json_file=out_file, markdown_file=markdown_file)
    return plan_exit_code(result, detailed_exitcode)


def _placed(plan: Plan, path: str) -> Plan:
    """`plan` with the git commit and path of the configuration, when it is in a
    git checkout: apply accepts the saved plan in another checkout of that commit."""
    from reconciler.config.checkout import checkout_place

    place = checkout_place(path)
    if place is None:
        return plan
    return replace(plan, config_commit=place.commit, config_path=place.path)
