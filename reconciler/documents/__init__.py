"""The JSON documents qlik-email writes and reads, in one place, below both the
engine (which saves plans and keeps the record of applied secrets) and report/
(which renders them as text, Markdown, HTML and CSV):

    plan    `plan --out FILE` and `plan --format json`; `apply FILE`      (`plan`)
    state   the record of the secrets apply last applied (`--state`)     (`state`)
    apply   the apply report (`apply --report`)                          (`apply`)
    drift   the drift report (`drift --report`)                          (`drift`)

Each is a dict (the codec) that starts with the same envelope
(`formatVersion`, `kind`, `generator`, `createdAt`), and has a JSON Schema in
`schemas/`. The CLI writes them as text with `report.style.dumps`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from reconciler import __version__

FORMAT_VERSION = 1


def envelope(kind: str) -> dict[str, Any]:
    """The header every JSON document starts with."""
    return {
        "formatVersion": FORMAT_VERSION,
        "kind": kind,
        "generator": f"qlik-email {__version__}",
        "createdAt": datetime.now(timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
    }
