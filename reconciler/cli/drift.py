"""`qlik-email drift`: report tenants whose live config or health drifted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler.cli.app import State, err
from reconciler.cli.common import drift_exit_code, drift_output, emit, load_engine
from reconciler.cli.options import (
    base_option,
    drift_format_option,
    fleet_options,
    fleet_view_options,
    markdown_option,
    state_option,
    today_from_env,
)
from reconciler.cli.record import open_store, read_record
from reconciler.engine.trust import NOT_READ_REASON

if TYPE_CHECKING:
    from reconciler.config.base import TrustedBase


@click.command()
@fleet_options
@drift_format_option
@markdown_option
@fleet_view_options
@base_option
@state_option
@click.option(
    "--verify", is_flag=True, help="Also run verify-connection on every configured tenant."
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False),
    help="Also write the JSON drift report here.",
)
@click.pass_obj
def drift(
    state: State,
    path: str,
    tenants: tuple[str, ...],
    shard: str | None,
    concurrency: int | None,
    progress: bool | None,
    fmt: str,
    markdown_file: str | None,
    html_file: str | None,
    csv_file: str | None,
    base: TrustedBase | None,
    state_file: str | None,
    state_remote: str | None,
    state_ref: str | None,
    verify: bool,
    report_file: str | None,
) -> int:
    """Report config drift (live differs from PATH) and health per tenant.

    Exit 0 when clean, 2 when some tenant drifted or is unhealthy, 1 on error.
    Like plan, it resolves only the API credentials and runs no command. With
    --state (FILE or git), a secret the record says apply has not sent yet is
    drift too (the record is only read).
    """
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
    report = engine.drift(verify=verify, today=today_from_env())
    emit(
        state,
        drift_output(report),
        fmt,
        json_file=report_file,
        markdown_file=markdown_file,
        html_file=html_file,
        csv_file=csv_file,
    )
    held = sum(1 for t in engine.tenants if t.name in engine.trust.not_read)
    if held:
        err(f"Note: {held} tenant(s) not read: {NOT_READ_REASON}.")
    return drift_exit_code(report)
