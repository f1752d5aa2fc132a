"""Which tenants a run works on: the loaded configuration, `--tenant` patterns
and `--shard I/N`, and the run's concurrency."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Protocol

from reconciler.config.loader import ConfigLoad
from reconciler.engine.trust import Judge, Trust
from reconciler.errors import ReconcilerError
from reconciler.model import DesiredState, Settings, TenantSpec
from reconciler.values import valueclass


@valueclass
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


def shard_key(name: str) -> bytes:
    """Where a tenant stands in the order shards are cut from: a hash of its
    name, so that shards mix tenants of every kind and name."""
    return hashlib.sha256(name.encode()).digest()


def shards(names: Sequence[str], count: int) -> dict[str, int]:
    """The 1-based shard of each of `names`: the names in hash order, cut into
    `count` runs whose sizes differ by at most one. Adding or removing a tenant
    moves each cut by at most one place, so at most `count - 1` other tenants
    change shard."""
    ordered = sorted(set(names), key=lambda name: (shard_key(name), name))
    total = len(ordered)
    return {name: index * count // total + 1 for index, name in enumerate(ordered)}


def select_tenants(
    tenants: Sequence[TenantSpec],
    patterns: Sequence[str] = (),
    shard: tuple[int, int] | None = None,
) -> tuple[TenantSpec, ...]:
    """The tenants named by `patterns` (names or globs; all when empty) in `shard`
    (of the tenants the patterns name); raises ReconcilerError when a pattern
    names no tenant."""
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(t.name, p) for t in tenants)]
    if unmatched:
        raise ReconcilerError(
            f"--tenant {', '.join(unmatched)}: no such tenant in the configuration"
        )
    named = [t for t in tenants if chosen(t.name, patterns)]
    if shard is None:
        return tuple(named)
    index, count = shard
    of = shards([t.name for t in named], count)
    return tuple(t for t in named if of[t.name] == index)


def chosen(name: str, patterns: Sequence[str]) -> bool:
    """Whether the tenant `name` is one of `patterns` (all when empty)."""
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


class SelectionSource(Protocol):
    """Where the engine takes its tenants from: a Selection that may still be
    loading. Iterating gives, file by file, each tenant that may be contacted
    now (or None); `finish` gives the whole Selection and the base's verdict
    (None without a base), or raises the configuration's problems."""

    concurrency: int
    today: date

    @property
    def settings(self) -> Settings: ...

    @property
    def judged(self) -> bool: ...

    @property
    def ok(self) -> bool: ...

    def __iter__(self) -> Iterator[TenantSpec | None]: ...

    def finish(self) -> tuple[Selection, Trust | None]: ...


class Loaded:
    """A Selection already loaded, as a SelectionSource: every tenant that may be
    contacted (not paused on `today`, not held back by `trust`) at once."""

    def __init__(
        self, selection: Selection, trust: Trust | None = None, today: date | None = None
    ) -> None:
        self._selection, self._trust = selection, trust
        self.concurrency = selection.concurrency
        self.today = today or date.today()

    @property
    def settings(self) -> Settings:
        return self._selection.desired.settings

    @property
    def judged(self) -> bool:
        return self._trust is not None

    @property
    def ok(self) -> bool:
        return True

    def __iter__(self) -> Iterator[TenantSpec | None]:
        held = self._trust.not_read if self._trust is not None else {}
        for tenant in self._selection.tenants:
            paused = tenant.paused is not None and tenant.paused.active(self.today)
            yield None if paused or tenant.name in held else tenant

    def finish(self) -> tuple[Selection, Trust | None]:
        return self._selection, self._trust


class SelectionLoad:
    """A Selection still being loaded: the configuration is loaded file by file
    and each tenant is selected (`--tenant`, `--shard`) and judged (`--base`)
    as soon as its file is, so that the engine reads the first tenants while
    the last files are parsed.

    Iterating loads one file per step and gives the tenant to contact now, or
    None: not selected, in a `--shard` (cut once every name is known), paused
    on `today`, not vouched for by the base, or the configuration has a
    problem (once it has one, no tenant is given: the run will fail). `finish`
    loads what is left and returns the Selection and the Trust, or raises the
    ConfigError (every problem of every file) or the bad `--tenant`, exactly as
    `load_config` then `select` would.
    """

    def __init__(
        self,
        load: ConfigLoad,
        patterns: Sequence[str] = (),
        shard: str | None = None,
        concurrency: int | None = None,
        base: DesiredState | None = None,
        today: date | None = None,
    ) -> None:
        self._load = load
        self.today = today or date.today()
        self._patterns = tuple(patterns)
        self._shard_text = shard
        self._shard = parse_shard(shard) if shard else None
        self._judge = Judge(base) if base is not None else None
        self.concurrency = concurrency or load.settings.concurrency

    @property
    def judged(self) -> bool:
        """True when a trusted base judges the tenants (`--base`)."""
        return self._judge is not None

    @property
    def settings(self) -> Settings:
        """The settings that apply (known before any tenant file is loaded)."""
        return self._load.settings

    @property
    def root(self) -> Path:
        """The configuration repository's directory."""
        return self._load.root

    @property
    def ok(self) -> bool:
        """No problem found in the configuration so far."""
        return self._load.ok

    def __iter__(self) -> Iterator[TenantSpec | None]:
        for tenant in self._load:
            yield tenant if tenant is not None and self._contact(tenant) else None

    def _contact(self, tenant: TenantSpec) -> bool:
        if not self._load.ok or not chosen(tenant.name, self._patterns):
            return False
        if tenant.paused is not None and tenant.paused.active(self.today):
            return False
        trusted = self._judge is None or self._judge.add(tenant)
        # A shard is cut from every selected tenant's name: its tenants are
        # known, and read, once every file is loaded (judged all the same).
        return trusted and self._shard is None

    def finish(self) -> tuple[Selection, Trust | None]:
        """The whole Selection, and the base's verdict (None without a base)."""
        for _ in self:
            pass
        desired = self._load.finish()
        selection = select(desired, self._patterns, self._shard_text, self.concurrency)
        if self._judge is None:
            return selection, None
        # Named once, by the first shard, so that merged shards name each once.
        first = self._shard is None or self._shard[0] == 1
        gone = self._judge.unmanaged(desired.tenants) if first else ()
        unmanaged = tuple(u for u in gone if chosen(u.name, self._patterns))
        return selection, replace(self._judge.trust(), unmanaged=unmanaged)
