"""The drift report as a document (`schemas/drift-report.schema.json`), and back
(`report merge`, `show`); its summary counts, which every view shows."""

from __future__ import annotations

from typing import Any

from reconciler.documents import envelope
from reconciler.engine.drift import (
    ConnectionCheck,
    DriftReport,
    HealthProblem,
    LiveSummary,
    TenantDrift,
    drift_fingerprint,
)
from reconciler.model import FieldChange, Health

DRIFT_KIND = "qlik-email/drift-report"


def summary_counts(report: DriftReport) -> dict[str, int]:
    """How many tenants are of each status: every tenant is counted once (a tenant
    that drifted is counted as drifted; `driftedAndUnhealthy` says how many of
    those are unhealthy too)."""
    statuses = [t.status for t in report.tenants]
    return {
        "drifted": statuses.count("drifted"),
        "unhealthy": statuses.count("unhealthy"),
        "errors": statuses.count("error"),
        "clean": statuses.count("clean"),
        "paused": statuses.count("paused"),
        "driftedAndUnhealthy": sum(1 for t in report.tenants if t.drifted and t.unhealthy),
    }


def drift_document(report: DriftReport) -> dict[str, Any]:
    """The versioned JSON drift report."""
    document = envelope(DRIFT_KIND)
    document["fingerprint"] = report.fingerprint
    document["clean"] = report.clean
    document["summary"] = summary_counts(report)
    document["tenants"] = [_json_tenant(t) for t in report.tenants]
    document["shard"] = report.shard
    return document


def _json_tenant(tenant: TenantDrift) -> dict[str, Any]:
    health = tenant.health
    return {
        "name": tenant.tenant,
        "url": tenant.url,
        "status": tenant.status,
        "changes": [
            {
                "field": c.field,
                "live": None if c.sensitive else c.before,
                "desired": None if c.sensitive else c.after,
                "sensitive": c.sensitive,
            }
            for c in tenant.changes
        ],
        "ignored": [{"field": f, "reason": r} for f, r in tenant.ignored],
        "health": None
        if health is None
        else {
            "isValid": health.is_valid,
            "errorCode": health.error_code,
            "authFailures": health.auth_failures,
        },
        "problems": [{"code": p.code, "message": p.message} for p in tenant.problems],
        "error": tenant.error,
        "paused": tenant.paused,
        "live": _json_live(tenant.live),
        "verify": None
        if tenant.verify is None
        else {"ok": tenant.verify.ok, "message": tenant.verify.message},
    }


def _json_live(live: LiveSummary | None) -> dict[str, Any] | None:
    if live is None:
        return None
    return {
        "provider": live.provider,
        "serverAddress": live.server_address,
        "serverPort": live.server_port,
        "emailAddress": live.email_address,
        "senderName": live.sender_name,
    }


def drift_report_from_document(document: dict[str, Any]) -> DriftReport:
    """The DriftReport a (schema-valid) drift report document describes. The
    fingerprint is computed again from the tenants, as `drift` computes it."""
    tenants = tuple(sorted((_tenant_from_json(t) for t in document["tenants"]), key=_name))
    return DriftReport(tenants, drift_fingerprint(tenants), document.get("shard"))


def _name(tenant: TenantDrift) -> str:
    return tenant.tenant


def _tenant_from_json(data: dict[str, Any]) -> TenantDrift:
    health = data["health"]
    # `live` and `verify` are absent from the reports of older versions.
    live, verify = data.get("live"), data.get("verify")
    return TenantDrift(
        tenant=data["name"],
        url=data["url"],
        changes=tuple(
            FieldChange(c["field"], c["live"], c["desired"], c["sensitive"])
            for c in data["changes"]
        ),
        ignored=tuple((i["field"], i["reason"]) for i in data["ignored"]),
        problems=tuple(HealthProblem(p["code"], p["message"]) for p in data["problems"]),
        health=None
        if health is None
        else Health(
            is_valid=health.get("isValid"),
            error_code=health.get("errorCode"),
            auth_failures=health.get("authFailures"),
        ),
        error=data["error"],
        paused=data.get("paused"),
        live=None
        if live is None
        else LiveSummary(
            provider=live["provider"],
            server_address=live.get("serverAddress"),
            server_port=live.get("serverPort"),
            email_address=live.get("emailAddress"),
            sender_name=live.get("senderName"),
        ),
        verify=None if verify is None else ConnectionCheck(verify["ok"], verify["message"]),
    )
