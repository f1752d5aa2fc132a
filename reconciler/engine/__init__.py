"""The engine: runs a command's whole pipeline and returns finished, typed documents.

    from reconciler.engine import ApplyOptions, Engine

    engine = Engine.load("path/to/config-repo", tenants=["acme*"])
    plan = engine.plan()                       # a Plan: what apply would change
    run = engine.apply(ApplyOptions(allow_delete=False))
    report = engine.drift(verify=True)         # a DriftReport

Modules: `selection` (which tenants), `fleet` (credentials, bounded concurrency,
progress), `planner` (pure: desired + live -> Plan), `applier` (PUT/DELETE,
verify, read back), `drift` (pure: drift and health), `planfile` (the plan's
JSON codec), `engine` (the `Engine` that runs them in one event loop).
"""

from __future__ import annotations

from reconciler.engine.applier import ApplyOptions, ApplyReport, Outcome, TenantResult
from reconciler.engine.drift import DriftReport
from reconciler.engine.engine import ApplyHooks, ApplyRun, Engine
from reconciler.engine.fleet import Phase, Progress
from reconciler.engine.selection import Selection, select

__all__ = [
    "ApplyHooks",
    "ApplyOptions",
    "ApplyReport",
    "ApplyRun",
    "DriftReport",
    "Engine",
    "Outcome",
    "Phase",
    "Progress",
    "Selection",
    "TenantResult",
    "select",
]
