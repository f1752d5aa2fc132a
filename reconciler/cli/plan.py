"""`qlik-email plan`: read every tenant and show what apply would change."""

from __future__ import annotations

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
from reconciler.engine.applied import load_record
from reconciler.engine.planfile import is_plan_file
from reconciler.errors import ReconcilerError

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
    out_file: str | None,
    detailed_exitcode: bool,
) -> int:
    """Show what would change to make the tenants match the configuration at PATH.

    Needs only the API credentials: no e-mail secret is resolved and no command
    from the configuration is run. With --state, shows the secrets apply will
    re-send because they differ from what it last applied (the file is only read).
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
    if state_file is not None:
        engine.record = load_record(Path(state_file))
    result = engine.plan()
    emit(state, plan_output(result), fmt, json_file=out_file, markdown_file=markdown_file)
    return plan_exit_code(result, detailed_exitcode)
