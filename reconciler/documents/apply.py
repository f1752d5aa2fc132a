"""The apply report as a document (`schemas/apply-report.schema.json`), and back
(`report merge`, `show`)."""

from __future__ import annotations

from typing import Any

from reconciler.documents import envelope
from reconciler.engine.applier import ApplyReport, Outcome, TenantResult, Waves
from reconciler.model import Action

APPLY_KIND = "qlik-email/apply-report"


def apply_document(report: ApplyReport) -> dict[str, Any]:
    """The versioned JSON apply report."""
    document = envelope(APPLY_KIND)
    document["interrupted"] = report.interrupted
    document["summary"] = {o.value: report.count(o) for o in Outcome}
    document["tenants"] = [_json_result(r) for r in report.results]
    document["shard"] = report.shard
    waves = report.waves
    document["waves"] = (
        None
        if waves is None
        else {
            "size": waves.size,
            "planned": waves.planned,
            "ran": waves.ran,
            "stopped": waves.stopped,
        }
    )
    return document


def _json_result(result: TenantResult) -> dict[str, Any]:
    return {
        "name": result.tenant,
        "url": result.url,
        "action": result.action.value,
        "outcome": result.outcome.value,
        "message": result.message,
        "verified": result.verified,
        "testEmail": result.test_email,
        "durationSeconds": result.duration_s,
    }


def apply_report_from_document(document: dict[str, Any]) -> ApplyReport:
    """The ApplyReport a (schema-valid) apply report document describes."""
    results = (
        TenantResult(
            tenant=t["name"],
            url=t["url"],
            action=Action(t["action"]),
            outcome=Outcome(t["outcome"]),
            message=t["message"],
            verified=t["verified"],
            test_email=t["testEmail"],
            duration_s=t["durationSeconds"],
        )
        for t in document["tenants"]
    )
    waves = document.get("waves")
    return ApplyReport(
        tuple(sorted(results, key=lambda r: r.tenant)),
        interrupted=document["interrupted"],
        shard=document.get("shard"),
        waves=None
        if waves is None
        else Waves(waves["size"], waves["planned"], waves["ran"], waves["stopped"]),
    )
