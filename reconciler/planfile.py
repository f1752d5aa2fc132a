"""Saved plans: read back what `plan --out FILE` wrote, for `apply FILE`.

A plan file holds no secret. It records, per tenant, the action and the
fingerprints of the live and desired state it was made from, so apply can
refuse tenants that moved since.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.errors import PlanFileError
from reconciler.model import Action, FieldChange, Plan, Provider, TenantPlan

PLAN_KIND = "qlik-email/plan"


def is_plan_file(path: Path) -> bool:
    """True when `path` is a file that looks like a saved plan (JSON of our kind)."""
    if not path.is_file() or path.suffix.lower() != ".json":
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return PLAN_KIND.encode() in head


def load_plan(path: Path) -> tuple[Plan, Path | None]:
    """The plan saved at `path` and the config root it was made from."""
    from reconciler.schemas_util import validator

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"{path}: cannot read the saved plan: {exc}") from None
    errors = sorted(validator("plan.schema.json").iter_errors(document), key=lambda e: e.path)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise PlanFileError(
            f"{path}: not a plan this version of qlik-email can apply "
            f"({where}: {errors[0].message})"
        )
    root = document.get("configRoot")
    plan = Plan(tuple(tenant_plan_from_json(t) for t in document["tenants"]))
    return plan, Path(root) if root else None


def tenant_plan_from_json(data: dict[str, Any]) -> TenantPlan:
    """One tenant of a plan document (schemas/plan.schema.json) as a TenantPlan."""
    return TenantPlan(
        tenant=data["name"],
        url=data["url"],
        action=Action(data["action"]),
        changes=tuple(
            FieldChange(c["field"], c["before"], c["after"], c["sensitive"])
            for c in data["changes"]
        ),
        provider_before=Provider(data["providerBefore"]) if data["providerBefore"] else None,
        provider_after=Provider(data["providerAfter"]) if data["providerAfter"] else None,
        live_fingerprint=data["liveFingerprint"],
        desired_fingerprint=data["desiredFingerprint"],
        error=data["error"],
    )
