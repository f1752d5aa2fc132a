"""The plan codec: a Plan as the versioned JSON document (`schemas/plan.schema.json`)
that `plan --format json` and `plan --out FILE` write, and back, for `apply FILE`
and `report merge`.

A plan document holds no secret: sensitive changes carry no values. It records,
per tenant, the action and the fingerprints of the live and desired state it
was made from, so apply can refuse tenants that moved since.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.documents import envelope
from reconciler.errors import PlanFileError
from reconciler.jsonfile import read_json
from reconciler.model import (
    UNMANAGED_NOTE,
    Action,
    ApplyNeed,
    FieldChange,
    Plan,
    Provider,
    TenantPlan,
    Unmanaged,
)

PLAN_KIND = "qlik-email/plan"


def plan_document(plan: Plan) -> dict[str, Any]:
    """The versioned JSON plan."""
    document = envelope(PLAN_KIND)
    document["summary"] = {
        "create": plan.count(Action.CREATE),
        "update": plan.count(Action.UPDATE),
        "replace": plan.count(Action.REPLACE),
        "delete": plan.count(Action.DELETE),
        "unchanged": plan.count(Action.NOOP),
        "errors": len(plan.errors),
        "notRead": len(plan.not_read),
        "paused": len(plan.paused),
        "noLongerManaged": len(plan.unmanaged),
    }
    document["tenants"] = [_json_tenant(t) for t in plan.tenants]
    if plan.config_root is not None:
        document["configRoot"] = plan.config_root
    if plan.config_commit is not None:
        document["configCommit"] = plan.config_commit
        document["configPath"] = plan.config_path or ""
    document["shard"] = plan.shard
    document["applyNeeds"] = [{"flag": n.flag, "reason": n.reason} for n in plan.needs]
    document["noLongerManaged"] = [
        {"name": u.name, "url": u.url, "note": UNMANAGED_NOTE} for u in plan.unmanaged
    ]
    return document


def _json_tenant(tenant: TenantPlan) -> dict[str, Any]:
    return {
        "name": tenant.tenant,
        "url": tenant.url,
        "action": tenant.action.value,
        "providerBefore": tenant.provider_before.value if tenant.provider_before else None,
        "providerAfter": tenant.provider_after.value if tenant.provider_after else None,
        "liveFingerprint": tenant.live_fingerprint,
        "desiredFingerprint": tenant.desired_fingerprint,
        "changes": [
            {
                "field": c.field,
                "before": None if c.sensitive else c.before,
                "after": None if c.sensitive else c.after,
                "sensitive": c.sensitive,
                **_moved(c),
            }
            for c in tenant.changes
        ],
        "error": tenant.error,
        "notRead": tenant.not_read,
        "paused": tenant.paused,
    }


def _moved(change: FieldChange) -> dict[str, str | None]:
    """A re-sent secret's old and new reference (names, not values), where it
    goes, its rotation markers, and what it was compared with (base or state)."""
    if change.after_ref is None:
        return {}
    return {
        "beforeRef": change.before_ref,
        "afterRef": change.after_ref,
        "sentTo": change.sent_to,
        "beforeRotation": change.before_rotation,
        "afterRotation": change.after_rotation,
        "comparedWith": change.compared_with,
    }


def plan_from_document(document: dict[str, Any]) -> Plan:
    """The Plan a (schema-valid) plan document describes, tenants sorted by name."""
    tenants = (_tenant_from_json(t) for t in document["tenants"])
    return Plan(
        tuple(sorted(tenants, key=lambda t: t.tenant)),
        shard=document.get("shard"),
        config_root=document.get("configRoot"),
        needs=tuple(ApplyNeed(n["flag"], n["reason"]) for n in document.get("applyNeeds", [])),
        unmanaged=tuple(
            Unmanaged(u["name"], u["url"]) for u in document.get("noLongerManaged", [])
        ),
        config_commit=document.get("configCommit"),
        config_path=document.get("configPath"),
    )


def _tenant_from_json(data: dict[str, Any]) -> TenantPlan:
    return TenantPlan(
        tenant=data["name"],
        url=data["url"],
        action=Action(data["action"]),
        changes=tuple(
            FieldChange(
                c["field"],
                c["before"],
                c["after"],
                c["sensitive"],
                c.get("beforeRef"),
                c.get("afterRef"),
                c.get("sentTo"),
                c.get("beforeRotation"),
                c.get("afterRotation"),
                c.get("comparedWith", "base" if c.get("afterRef") else None),
            )
            for c in data["changes"]
        ),
        provider_before=Provider(data["providerBefore"]) if data["providerBefore"] else None,
        provider_after=Provider(data["providerAfter"]) if data["providerAfter"] else None,
        live_fingerprint=data["liveFingerprint"],
        desired_fingerprint=data["desiredFingerprint"],
        error=data["error"],
        not_read=data.get("notRead"),
        paused=data.get("paused"),
    )


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


def load_plan(path: Path) -> Plan:
    """The plan saved at `path` (its `config_root` says where it was made)."""
    from reconciler.jsonschemas import schema_problem

    try:
        document = read_json(path)
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSON problems included
        raise PlanFileError(f"{path}: cannot read the saved plan: {exc}") from None
    problem = schema_problem("plan.schema.json", document)
    if problem is not None:
        raise PlanFileError(f"{path}: not a plan this version of qlik-email can apply ({problem})")
    return plan_from_document(document)
