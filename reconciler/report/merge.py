"""Merging the JSON reports of shards (`plan`, `apply` or `drift` run with
`--shard I/N`) into the report one unsharded run would have written.

The documents must all be of one kind and name disjoint tenants. The merged
document is rebuilt from the tenants by the same code that builds a report, so
its summary (and, for drift, its fingerprint) is computed afresh, not added up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.errors import ReportFileError

if TYPE_CHECKING:  # the applier pulls in the HTTP client, which merging never needs
    from reconciler.engine.applier import ApplyReport
    from reconciler.engine.drift import DriftReport
    from reconciler.model import Plan

_SHARD = re.compile(r"^([0-9]+)/([0-9]+)$")
# document kind -> (short name, schema)
KINDS = {
    "qlik-email/plan": ("plan", "plan.schema.json"),
    "qlik-email/apply-report": ("apply", "apply-report.schema.json"),
    "qlik-email/drift-report": ("drift", "drift-report.schema.json"),
}


@dataclass(frozen=True)
class Source:
    """One report to merge: where it came from (for messages) and its JSON."""

    name: str
    document: Any


@dataclass(frozen=True)
class MergedReport:
    """The merged report as a model (for the renderers) and as a JSON document."""

    kind: str  # "plan", "apply" or "drift"
    report: Plan | ApplyReport | DriftReport
    document: dict[str, Any]
    shards: tuple[str, ...]  # the --shard values the sources recorded, sorted


def merge_reports(sources: Sequence[Source]) -> MergedReport:
    """Merge `sources`; raises ReportFileError when they cannot be merged."""
    if not sources:
        raise ReportFileError("no report to merge")
    names = [source.name for source in sources]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ReportFileError(f"{', '.join(twice)}: given more than once")
    kinds = {source.name: _kind_of(source) for source in sources}
    if len(set(kinds.values())) > 1:
        listed = "; ".join(f"{name}: {kind}" for name, kind in kinds.items())
        raise ReportFileError(f"cannot merge reports of different kinds ({listed})")
    _check_disjoint(sources)
    kind = next(iter(kinds.values()))
    recorded = {s.document.get("shard") for s in sources}
    shards = tuple(
        sorted((s for s in recorded if isinstance(s, str) and _SHARD.match(s)), key=_shard_key)
    )
    tenants = [t for source in sources for t in source.document["tenants"]]
    if kind == "plan":
        return _merge_plans(sources, tenants, shards)
    if kind == "apply":
        return _merge_applies(sources, tenants, shards)
    return _merge_drifts(tenants, shards)


def shard_problem(shards: Sequence[str]) -> str | None:
    """What is wrong with the set of `--shard` values the merged reports recorded
    (shards of different N, or some of the N missing), or None."""
    counts = sorted({int(shard.split("/")[1]) for shard in shards})
    if len(counts) > 1:
        return f"the reports come from different shard counts ({', '.join(shards)})"
    if not counts:
        return None
    present = {int(shard.split("/")[0]) for shard in shards}
    missing = [f"{i}/{counts[0]}" for i in range(1, counts[0] + 1) if i not in present]
    if missing:
        return f"shard {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
    return None


def _shard_key(shard: str) -> tuple[int, int]:
    index, _, count = shard.partition("/")
    return int(count), int(index)


def _kind_of(source: Source) -> str:
    """The short kind of a report, after checking it against its schema."""
    from reconciler.jsonschemas import schema_problem

    document = source.document
    kind = document.get("kind") if isinstance(document, dict) else None
    if kind not in KINDS:
        raise ReportFileError(
            f"{source.name}: not a qlik-email plan, apply or drift report "
            "(write one with --format json, --out or --report)"
        )
    short, schema = KINDS[kind]
    problem = schema_problem(schema, document)
    if problem is not None:
        raise ReportFileError(
            f"{source.name}: not a {short} report this version of qlik-email can read ({problem})"
        )
    return short


def _check_disjoint(sources: Sequence[Source]) -> None:
    seen: dict[str, str] = {}
    clashes: list[str] = []
    for source in sources:
        for tenant in source.document["tenants"]:
            name = tenant["name"]
            if name in seen:
                clashes.append(f"{name} (in {seen[name]} and {source.name})")
            else:
                seen[name] = source.name
    if clashes:
        more = f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        raise ReportFileError(
            f"the reports overlap: {len(clashes)} tenant(s) appear twice: "
            f"{', '.join(clashes[:5])}{more}. Merge the reports of disjoint shards "
            "(one N, each I once)"
        )


def _merge_plans(
    sources: Sequence[Source], tenants: list[dict[str, Any]], shards: tuple[str, ...]
) -> MergedReport:
    from reconciler.documents.plan import plan_document, plan_from_document

    roots = {s.document.get("configRoot") for s in sources}
    # Kept only when every shard agrees: `apply` reads the configuration from there.
    root = roots.pop() if len(roots) == 1 else None
    # The merged report covers every shard given: it records no shard of its own.
    # Each shard's needs were judged on its own tenants: all of them are kept.
    needs = [n for s in sources for n in s.document.get("applyNeeds", [])]
    unique = [dict(pair) for pair in dict.fromkeys(tuple(sorted(n.items())) for n in needs)]
    gone = [u for s in sources for u in s.document.get("noLongerManaged", [])]
    plan = plan_from_document(
        {"tenants": tenants, "configRoot": root, "applyNeeds": unique, "noLongerManaged": gone}
    )
    return MergedReport("plan", plan, plan_document(plan), shards)


def _merge_applies(
    sources: Sequence[Source], tenants: list[dict[str, Any]], shards: tuple[str, ...]
) -> MergedReport:
    from reconciler.documents.apply import apply_document, apply_report_from_document

    interrupted = any(s.document["interrupted"] for s in sources)
    report = apply_report_from_document({"tenants": tenants, "interrupted": interrupted})
    return MergedReport("apply", report, apply_document(report), shards)


def _merge_drifts(tenants: list[dict[str, Any]], shards: tuple[str, ...]) -> MergedReport:
    from reconciler.documents.drift import drift_document, drift_report_from_document

    report = drift_report_from_document({"tenants": tenants})
    return MergedReport("drift", report, drift_document(report), shards)
