"""The engine: runs a command's whole pipeline and returns finished, typed documents.

    from reconciler.engine import ApplyOptions, Engine

    engine = Engine.load("path/to/config-repo", tenants=["acme*"])
    plan = engine.plan()                       # a Plan: what apply would change
    run = engine.apply(ApplyOptions(allow_delete=False))
    report = engine.drift(verify=True)         # a DriftReport

Modules: `selection` (which tenants), `fleet` (credentials, bounded concurrency,
progress), `planner` (pure: desired + live -> Plan), `safety` (what apply needs),
`applier` (PUT/DELETE, verify, read back), `drift` (pure: drift and health),
`applied` (what the record of applied secrets says to re-send, kept by
`applied_store`), `engine` (the `Engine` that runs them in one event loop).
The documents the engine saves and reads are `reconciler.documents`'.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.engine.applier import ApplyOptions as ApplyOptions
    from reconciler.engine.applier import ApplyReport as ApplyReport
    from reconciler.engine.applier import Outcome as Outcome
    from reconciler.engine.applier import TenantResult as TenantResult
    from reconciler.engine.applier import WaveSize as WaveSize
    from reconciler.engine.drift import DriftReport as DriftReport
    from reconciler.engine.engine import ApplyHooks as ApplyHooks
    from reconciler.engine.engine import ApplyRun as ApplyRun
    from reconciler.engine.engine import Engine as Engine
    from reconciler.engine.fleet import Phase as Phase
    from reconciler.engine.fleet import Progress as Progress
    from reconciler.engine.selection import Selection as Selection
    from reconciler.engine.selection import select as select

# Loaded on first use: the pure modules (planner, drift, the plan codec,
# selection) serve `validate`, `show` and `report merge`, which must not pay for
# importing the HTTP client (bench/NOTES.md).
_HOMES = {
    "ApplyHooks": "engine",
    "ApplyOptions": "applier",
    "ApplyReport": "applier",
    "ApplyRun": "engine",
    "DriftReport": "drift",
    "Engine": "engine",
    "Outcome": "applier",
    "Phase": "fleet",
    "Progress": "fleet",
    "Selection": "selection",
    "TenantResult": "applier",
    "WaveSize": "applier",
    "select": "selection",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'reconciler.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"reconciler.engine.{home}"), name)
