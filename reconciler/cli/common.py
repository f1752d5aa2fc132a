"""Steps shared by the commands that talk to tenants."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.cli.app import ProgressPrinter, State
from reconciler.model import DesiredState, TenantSpec

if TYPE_CHECKING:
    from reconciler.client import ClientOptions
    from reconciler.secrets import SecretResolver


@dataclass(frozen=True)
class Selection:
    """The loaded configuration and the tenants this run works on."""

    desired: DesiredState
    tenants: tuple[TenantSpec, ...]
    concurrency: int
    shard: str | None


def select(
    path: str, patterns: tuple[str, ...], shard: str | None, concurrency: int | None
) -> Selection:
    """Load and validate the configuration, then pick the tenants of this run."""
    from reconciler.config import load_config
    from reconciler.fleet import parse_shard, select_tenants

    desired = load_config(path)
    parsed = parse_shard(shard) if shard else None
    tenants = select_tenants(desired.tenants, patterns, parsed)
    return Selection(desired, tenants, concurrency or desired.settings.concurrency, shard)


def resolver(state: State, selection: Selection, *, allow_cmd: bool) -> SecretResolver:
    """A resolver for this run. Reading commands (plan, drift) neither run commands
    nor read files outside the config repository; apply may do both."""
    from reconciler.secrets import ResolvePolicy, SecretResolver

    policy = ResolvePolicy(
        base_dir=selection.desired.root, allow_cmd=allow_cmd, confine_files=not allow_cmd
    )
    result = SecretResolver(policy)
    # The log filter asks for these at logging time: every resolved value is redacted.
    state.secret_values = result.known_values
    return result


def client_options(selection: Selection) -> ClientOptions:
    from reconciler.client import ClientOptions

    return ClientOptions(
        timeout_s=selection.desired.settings.timeout_s,
        connections=selection.concurrency,
    )


def progress_printer(
    selection: Selection,
    label: str,
    flag: bool | None,
    *,
    per_tenant: bool = False,
    total: int | None = None,
) -> ProgressPrinter:
    """The progress display for this run (--progress / --no-progress / auto)."""
    mode = None if flag is None else ("always" if flag else "never")
    count = len(selection.tenants) if total is None else total
    return ProgressPrinter(count, label, mode, per_tenant)


def write_json(path: str, document: dict[str, Any]) -> None:
    """Write a JSON report file (created with mode 0600: reports name tenants)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
