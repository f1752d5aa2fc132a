"""`qlik-email drift`: report tenants whose live config or health drifted."""

from __future__ import annotations

import os
from datetime import date
from typing import TYPE_CHECKING

import click

from reconciler.cli.app import State
from reconciler.cli.common import (
    Selection,
    client_options,
    drift_exit_code,
    drift_output,
    emit,
    read_tenants,
    resolver,
    select,
)
from reconciler.cli.options import fleet_options, format_option, markdown_option

TODAY_VARIABLE = "QLIK_EMAIL_TODAY"

if TYPE_CHECKING:
    from reconciler.model import LiveState
    from reconciler.secrets import SecretResolver


@click.command()
@fleet_options
@format_option
@markdown_option
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
    verify: bool,
    report_file: str | None,
) -> int:
    """Report config drift (live differs from PATH) and health per tenant.

    Exit 0 when clean, 2 when some tenant drifted or is unhealthy, 1 on error.
    Like plan, it resolves only the API credentials and runs no command.
    """
    from reconciler.drift import build_report
    from reconciler.report.drift import drift_document

    selection = select(path, tenants, shard, concurrency)
    secrets = resolver(state, selection, allow_cmd=False)
    live, verified = _read(selection, secrets, verify, progress)
    report = build_report(
        selection.tenants, live, selection.desired.settings.ignore, _today(), verified
    )
    document = drift_document(report)
    document["shard"] = selection.shard
    emit(
        state,
        drift_output(report, document),
        fmt,
        json_file=report_file,
        markdown_file=markdown_file,
    )
    return drift_exit_code(report)


def _today() -> date:
    """Today, or the date in QLIK_EMAIL_TODAY (YYYY-MM-DD): tests, and a look at
    which ignore rules will have expired by a given day."""
    text = os.environ.get(TODAY_VARIABLE, "").strip()
    if not text:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        message = f"{TODAY_VARIABLE} must be a date like 2026-12-31, got {text!r}"
        raise click.UsageError(message) from None


def _read(
    selection: Selection, secrets: SecretResolver, verify: bool, flag: bool | None
) -> tuple[dict[str, LiveState | str], dict[str, tuple[bool, str]]]:
    import asyncio

    from reconciler.client import ApiSession
    from reconciler.fleet import verify_all

    live = read_tenants(selection, secrets, flag)
    if not verify:
        return live, {}
    configured = [t for t in selection.tenants if _configured(live[t.name])]

    async def check() -> dict[str, tuple[bool, str]]:
        async with ApiSession(client_options(selection)) as session:
            return await verify_all(session, configured, secrets, concurrency=selection.concurrency)

    return live, asyncio.run(check())


def _configured(state: LiveState | str) -> bool:
    return not isinstance(state, str) and state.email is not None
