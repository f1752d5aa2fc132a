"""The record of applied secrets as a document (`schemas/state.schema.json`),
and as a file: reference names such as `${env:T2_SMTP}`, never the values they
resolve to; written atomically (a temporary file in the same directory, then a
rename)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.atomic import write_atomically
from reconciler.documents import envelope
from reconciler.errors import StateFileError
from reconciler.jsonfile import JsonRefused, parse_bounded, read_json
from reconciler.model import AppliedRecord, AppliedSecret

STATE_KIND = "qlik-email/applied-state"


def state_document(record: AppliedRecord) -> dict[str, object]:
    """The versioned JSON document of `record` (tenants sorted by name)."""
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
    from reconciler.jsonschemas import schema_problem

    problem = schema_problem("state.schema.json", document)
    if problem is not None:
        raise StateFileError(
            f"{where}: not an applied-state file this version of qlik-email can use ({problem})"
        )
    return AppliedRecord(
        {
            name: AppliedSecret(entry["url"], entry["secretRef"], entry["rotation"])
            for name, entry in document["tenants"].items()
        }
    )


def record_text(record: AppliedRecord) -> str:
    """The state document of `record`, as written: ASCII JSON, so that no
    character of a reference name is written raw."""
    return json.dumps(state_document(record), indent=2, ensure_ascii=True) + "\n"


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
    try:
        write_atomically(path, record_text(record))
    except OSError as exc:
        raise StateFileError(f"{path}: cannot write the applied-state file: {exc}") from None
