"""Which tenants a run works on: the loaded configuration, `--tenant` patterns
and `--shard I/N`, and the run's concurrency."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.errors import ReconcilerError
from reconciler.model import DesiredState, TenantSpec


@dataclass(frozen=True, slots=True)
class Selection:
    """The loaded configuration and the tenants of this run; `shard` is the
    `--shard I/N` text (None: no sharding), recorded in every report."""

    desired: DesiredState
    tenants: tuple[TenantSpec, ...]
    concurrency: int
    shard: str | None = None


def select(
    desired: DesiredState,
    patterns: Sequence[str] = (),
    shard: str | None = None,
    concurrency: int | None = None,
) -> Selection:
    """The tenants of `desired` named by `patterns` (all when empty) in `shard`;
    concurrency defaults to `settings.concurrency`."""
    tenants = select_tenants(desired.tenants, patterns, parse_shard(shard) if shard else None)
    return Selection(desired, tenants, concurrency or desired.settings.concurrency, shard)


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1-based) as a pair; raises ReconcilerError when malformed."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ReconcilerError(f"--shard must look like I/N (e.g. 2/4), got {text!r}") from None
    if count < 1 or not 1 <= index <= count:
        raise ReconcilerError(f"--shard {text}: I must be between 1 and N, and N at least 1")
    return index, count


def shard_of(name: str, count: int) -> int:
    """The 1-based shard a tenant belongs to: a hash of its name, so a tenant stays
    in its shard whatever other tenants are added or removed."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_tenants(
    tenants: Sequence[TenantSpec],
    patterns: Sequence[str] = (),
    shard: tuple[int, int] | None = None,
) -> tuple[TenantSpec, ...]:
    """The tenants named by `patterns` (names or globs; all when empty) in `shard`."""
    chosen = list(tenants)
    if patterns:
        unmatched = [
            p for p in patterns if not any(fnmatch.fnmatchcase(t.name, p) for t in tenants)
        ]
        if unmatched:
            raise ReconcilerError(
                f"--tenant {', '.join(unmatched)}: no such tenant in the configuration"
            )
        chosen = [t for t in chosen if any(fnmatch.fnmatchcase(t.name, p) for p in patterns)]
    if shard is not None:
        index, count = shard
        chosen = [t for t in chosen if shard_of(t.name, count) == index]
    return tuple(chosen)
