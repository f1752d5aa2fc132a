"""`qlik-email validate`: check the configuration files, touching no tenant."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import date
from typing import Any

import click

from reconciler.cli.app import EXIT_ERROR, EXIT_OK, err, out
from reconciler.cli.options import allowed_hosts_from_env, base_option, today_from_env
from reconciler.config import load_config
from reconciler.config.base import TrustedBase, load_against_base
from reconciler.config.policy import tls_warnings
from reconciler.documents import envelope
from reconciler.engine.selection import select, select_tenants
from reconciler.errors import ConfigError
from reconciler.model import DesiredState, Provider, TenantSpec
from reconciler.report import escape
from reconciler.report.style import dumps
from reconciler.secrets import ResolvePolicy, SecretResolver


@click.command()
@click.argument("path", required=False, default=".", type=click.Path(file_okay=True, dir_okay=True))
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    metavar="NAME",
    help="Count only this tenant (a name or a glob; repeatable). Every file is still checked.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text, or a JSON document (schemas/validation.schema.json) with every problem.",
)
@click.option(
    "--secrets",
    "check_secrets",
    is_flag=True,
    help="Also resolve every secret reference as apply would (running ${cmd:...} and "
    "reading files anywhere): run it where apply runs, before apply.",
)
@base_option
def validate(
    path: str, tenants: tuple[str, ...], fmt: str, check_secrets: bool, base: TrustedBase | None
) -> int:
    """Validate the configuration at PATH (a directory with qlik-email.yaml, or that file).

    Every problem of every file is reported with file:line:column. No secret is
    resolved (unless --secrets) and no tenant is contacted. Exit 0 when valid,
    1 otherwise.
    """
    try:
        desired = _load(path, base)
    except ConfigError as exc:
        if fmt != "json":
            raise
        out(dumps(_document([], exc)))
        return EXIT_ERROR
    chosen = select_tenants(desired.tenants, tenants)
    today = today_from_env()
    warnings = [
        *tls_warnings(chosen),
        *pause_warnings(chosen, today),
        *ignore_warnings(desired, today),
    ]
    for warning in warnings:
        err(escape.terminal(warning))
    if check_secrets:
        # Here only: the engine brings the HTTP client, which plain validation
        # does not need (it would double the start-up time).
        from reconciler.engine import Engine

        policy = ResolvePolicy.for_repository(desired.root, allow_commands=True)
        Engine(select(desired, tenants), SecretResolver(policy), today=today).check_secrets()
    if fmt == "json":
        out(dumps(_document(chosen, None)))
        return EXIT_OK
    counts = _counts(chosen)
    resolved = " Every secret reference resolves." if check_secrets else ""
    out(
        f"Configuration valid: {len(chosen)} tenant(s) "
        f"({counts['BasicAuth']} BasicAuth, {counts['Microsoft365']} Microsoft365, "
        f"{counts['absent']} absent).{resolved}\n"
    )
    return EXIT_OK


def pause_warnings(tenants: Sequence[TenantSpec], today: date) -> list[str]:
    """A warning for each tenant whose pause ended before `today`: it is
    contacted again, and the file still says it is paused."""
    return [
        f"{t.paused.source or t.source}: warning: tenant {t.name} is paused until "
        f"{t.paused.until}, which has passed: the tenant is contacted again "
        "(remove paused:, or set a later until:)"
        for t in tenants
        if t.paused is not None and not t.paused.active(today)
    ]


def ignore_warnings(desired: DesiredState, today: date) -> list[str]:
    """A warning for each drift ignore rule that silences nothing: expired, or
    matching no tenant of the configuration."""
    found = []
    for rule in desired.settings.ignore:
        where = f"{rule.source}: warning: drift.ignore rule for tenant {rule.tenant}"
        if rule.expires < today:
            found.append(
                f"{where} expired on {rule.expires}: it silences nothing (remove it, or "
                "set a later expires:)"
            )
        elif not any(fnmatch.fnmatchcase(t.name, rule.tenant) for t in desired.tenants):
            found.append(f"{where} matches no tenant (fix the glob, or remove the rule)")
    return found


def _load(path: str, base: TrustedBase | None) -> DesiredState:
    hosts = allowed_hosts_from_env()
    if base is None:
        return load_config(path, allowed_hosts=hosts)
    return load_against_base(path, base, allowed_hosts=hosts)[0]


def _counts(tenants: tuple[TenantSpec, ...] | list[TenantSpec]) -> dict[str, int]:
    counts = {p.value: 0 for p in Provider} | {"absent": 0}
    for tenant in tenants:
        counts[tenant.email.provider.value if tenant.email else "absent"] += 1
    return counts


def _document(
    tenants: tuple[TenantSpec, ...] | list[TenantSpec], error: ConfigError | None
) -> dict[str, Any]:
    document = envelope("qlik-email/validation")
    document["valid"] = error is None
    document["tenants"] = [t.name for t in tenants]
    document["summary"] = _counts(tenants)
    document["notes"] = list(error.notes) if error else []
    document["errors"] = [
        {"file": i.file, "line": i.line, "column": i.column, "message": i.message}
        for i in (error.issues if error else [])
    ]
    return document
