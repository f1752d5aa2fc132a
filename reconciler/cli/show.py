"""`qlik-email show`: render a plan saved by `plan --out`, contacting no tenant."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.app import State
from reconciler.cli.common import emit, plan_output
from reconciler.cli.options import format_option, markdown_option
from reconciler.engine.planfile import load_plan


@click.command()
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(dir_okay=False))
@format_option
@markdown_option
@click.pass_obj
def show(state: State, plan_file: str, fmt: str, markdown_file: str | None) -> int:
    """Show the plan saved in PLAN.json (by `plan --out`) as text, JSON or Markdown.

    Reads only the file: no configuration, no secret, no tenant. Exit 0, or 1
    when the file is not a plan this version can read.
    """
    plan = load_plan(Path(plan_file))
    emit(state, plan_output(plan), fmt, markdown_file=markdown_file)
    return 0
