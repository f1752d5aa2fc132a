"""The record of what apply last applied (`--state FILE`): per tenant, the secret
reference and rotation marker of its last apply that ended `applied`.

The Transports API never returns secrets, so nothing on the tenant says which
secret it holds. This record does: apply compares each tenant's secret
reference and rotation marker with it, and a difference is a secret to re-send
(`SecretMove`, compared with "state"), even when nothing else changed. A tenant
with no record (or recorded at another URL) is unknown, and its secret is
re-sent once. The record is updated only for tenants whose apply ended
`applied`, so a failed apply re-sends again on the next run.

The record's document, and its file, are `documents.state`'s; where it is
kept (a file, or a ref of the repository's remote) is `applied_store`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.engine.applier import ApplyReport, Outcome
from reconciler.engine.trust import SecretMove, destination
from reconciler.model import NOT_RECORDED, AppliedRecord, AppliedSecret, TenantSpec


def secret_moves(record: AppliedRecord, tenants: Iterable[TenantSpec]) -> dict[str, SecretMove]:
    """The tenants whose e-mail secret apply must re-send: its reference or
    rotation marker differs from the record, or the tenant has no record."""
    moves: dict[str, SecretMove] = {}
    for spec in tenants:
        email = spec.email
        if email is None or email.secret is None:
            continue
        known = record.tenants.get(spec.name)
        if known is not None and known.url != spec.url:
            known = None  # another tenant now: what it holds is unknown
        after = str(email.secret)
        if known is not None and (known.secret, known.rotation) == (after, email.rotation):
            continue
        before = NOT_RECORDED if known is None else known.secret or "(none)"
        rotation = None if known is None else known.rotation
        moves[spec.name] = SecretMove(
            before, after, destination(email), rotation, email.rotation, compared_with="state"
        )
    return moves


def applied_entries(specs: Iterable[TenantSpec], report: ApplyReport) -> dict[str, AppliedSecret]:
    """What the record learns from `report`: every tenant that ended `applied`, with
    what it was applied with (a failed one is left out, and re-sends next time)."""
    applied = {r.tenant for r in report.results if r.outcome is Outcome.APPLIED}
    entries: dict[str, AppliedSecret] = {}
    for spec in specs:
        if spec.name in applied:
            email = spec.email
            secret = str(email.secret) if email and email.secret else None
            entries[spec.name] = AppliedSecret(spec.url, secret, email.rotation if email else None)
    return entries


def updated_record(
    record: AppliedRecord, specs: Iterable[TenantSpec], report: ApplyReport
) -> AppliedRecord:
    """`record` with every tenant that ended `applied` set to what it was applied
    with; every other tenant keeps its entry (a failed one re-sends next time)."""
    return merged(record, applied_entries(specs, report))


def merged(record: AppliedRecord, entries: Mapping[str, AppliedSecret]) -> AppliedRecord:
    """`record` with `entries` set (a delta is merged into whatever record is the
    newest when it is saved: two shards may save the same record)."""
    return AppliedRecord({**record.tenants, **entries})
