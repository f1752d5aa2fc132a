"""The record of what apply last applied (`--state FILE`): per tenant, the secret
reference and rotation marker of its last apply that ended `applied`.

The Transports API never returns secrets, so nothing on the tenant says which
secret it holds. This record does: apply compares each tenant's secret
reference and rotation marker with it, and a difference is a secret to re-send
(`SecretMove`, compared with "state"), even when nothing else changed. A tenant
with no record (or recorded at another URL) is unknown, and its secret is
re-sent once. The record is updated only for tenants whose apply ended
`applied`, so a failed apply re-sends again on the next run.

The file (`schemas/state.schema.json`) holds reference names such as
`${env:T2_SMTP}`, never the values they resolve to; it is written atomically
(a temporary file in the same directory, then a rename).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.engine.applier import ApplyReport, Outcome
from reconciler.engine.trust import SecretMove, destination
from reconciler.errors import StateFileError
from reconciler.jsonfile import JsonRefused, parse_bounded, read_json
from reconciler.model import NOT_RECORDED, TenantSpec

STATE_KIND = "qlik-email/applied-state"


@dataclass(frozen=True, slots=True)
class AppliedSecret:
    """One tenant's last fully applied secret: its URL, reference and marker
    (`secret` None: the tenant's configuration was deleted)."""

    url: str
    secret: str | None
    rotation: str | None = None


@dataclass(frozen=True, slots=True)
class AppliedRecord:
    """Every recorded tenant, by name."""

    tenants: Mapping[str, AppliedSecret] = field(default_factory=dict)


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


def state_document(record: AppliedRecord) -> dict[str, object]:
    """The versioned JSON document of `record` (tenants sorted by name)."""
    from reconciler.report.style import envelope

    document: dict[str, object] = envelope(STATE_KIND)
    document["tenants"] = {
        name: {"url": entry.url, "secretRef": entry.secret, "rotation": entry.rotation}
        for name, entry in sorted(record.tenants.items())
    }
    return document


def parse_record(text: str, where: str) -> AppliedRecord:
    """The record in `text` (a state document, bounded before it is parsed);
    StateFileError naming `where` if it is not one this version can use."""
    try:
        document = parse_bounded(text.encode("utf-8"))
    except JsonRefused as exc:
        raise StateFileError(f"{where}: cannot read the applied-state file: {exc}") from None
    except ValueError as exc:  # not JSON
        raise StateFileError(f"{where}: not an applied-state file: {exc}") from None
    return _record_of(document, where)


def _record_of(document: Any, where: str) -> AppliedRecord:
    """The record a parsed state document holds, checked against its schema."""
    from reconciler.jsonschemas import schema_errors

    errors = schema_errors("state.schema.json", document)
    if errors:
        location = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise StateFileError(
            f"{where}: not an applied-state file this version of qlik-email can use "
            f"({location}: {errors[0].message})"
        )
    return AppliedRecord(
        {
            name: AppliedSecret(entry["url"], entry["secretRef"], entry["rotation"])
            for name, entry in document["tenants"].items()
        }
    )


def record_text(record: AppliedRecord) -> str:
    """The state document of `record`, as written."""
    from reconciler.report.style import dumps

    return dumps(state_document(record))


def load_record(path: Path) -> AppliedRecord:
    """The record saved at `path`; an empty one when the file does not exist yet."""
    try:
        document = read_json(path)
    except FileNotFoundError:
        return AppliedRecord()
    except (OSError, UnicodeDecodeError, JsonRefused) as exc:
        raise StateFileError(f"{path}: cannot read the applied-state file: {exc}") from None
    except ValueError as exc:  # not JSON
        raise StateFileError(f"{path}: not an applied-state file: {exc}") from None
    return _record_of(document, str(path))


def save_record(path: Path, record: AppliedRecord) -> None:
    """Write `record` to `path` atomically: readers see the old file or the new
    one, never a half-written one."""
    text = record_text(record)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StateFileError(f"{path}: cannot write the applied-state file: {exc}") from None
