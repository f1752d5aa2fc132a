"""The fleet at a glance: every tenant of a drift report on one row, as CSV (for a
spreadsheet or a Qlik app) and as one self-contained HTML page.

Both views have the same columns (`COLUMNS`), built once per tenant by `rows`.
Every string in them comes from a configuration file or a tenant server, so it
is escaped for where it lands (`escape.csv_cell`, `escape.html`).
"""

from __future__ import annotations

import csv
import io

from reconciler.documents.drift import summary_counts
from reconciler.engine.drift import DriftReport, TenantDrift
from reconciler.report import escape
from reconciler.report.drift import change_text
from reconciler.values import valueclass

# (key, CSV header) in the order both views show them.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant", "tenant"),
    ("url", "url"),
    ("status", "status"),
    ("provider", "provider"),
    ("server_address", "smtpHost"),
    ("server_port", "smtpPort"),
    ("email_address", "senderAddress"),
    ("sender_name", "senderName"),
    ("is_valid", "isValid"),
    ("error_code", "errorCode"),
    ("auth_failures", "authFailures"),
    ("verify", "verify"),
    ("drift", "drift"),
    ("problems", "problems"),
    ("ignored", "ignored"),
    ("paused", "paused"),
    ("error", "error"),
)
SEPARATOR = "; "  # between the items of a list in one cell


@valueclass
class FleetRow:
    """One tenant as the fleet views show it; every value is plain, unescaped text
    ("" when there is nothing to show), lists are tuples of items."""

    tenant: str
    url: str
    status: str
    provider: str = ""
    server_address: str = ""
    server_port: str = ""
    email_address: str = ""
    sender_name: str = ""
    is_valid: str = ""
    error_code: str = ""
    auth_failures: str = ""
    verify: str = ""  # "ok", "failed: message", or "" when not run
    drift: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    paused: str = ""  # the pause's reason (and end): the tenant was not contacted
    error: str = ""

    def cell(self, key: str) -> str:
        """The column `key` as one line of text."""
        value = getattr(self, key)
        return SEPARATOR.join(value) if isinstance(value, tuple) else str(value)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def row(tenant: TenantDrift) -> FleetRow:
    """The fleet row of one tenant."""
    live, health, check = tenant.live, tenant.health, tenant.verify
    verify = "" if check is None else "ok" if check.ok else f"failed: {check.message}"
    return FleetRow(
        tenant=tenant.tenant,
        url=tenant.url,
        status=tenant.status,
        # "none": read, and without a configuration; "": not read at all.
        provider=live.provider if live else ("" if tenant.error or tenant.paused else "none"),
        server_address=_text(live and live.server_address),
        server_port=_text(live and live.server_port),
        email_address=_text(live and live.email_address),
        sender_name=_text(live and live.sender_name),
        is_valid=_text(health and health.is_valid),
        error_code=_text(health and health.error_code),
        auth_failures=_text(health and health.auth_failures),
        verify=verify,
        drift=tuple(change_text(tenant)),
        problems=tuple(p.message for p in tenant.problems),
        ignored=tuple(f"{field}: {reason}" for field, reason in tenant.ignored),
        paused=tenant.paused or "",
        error=tenant.error or "",
    )


def rows(report: DriftReport) -> list[FleetRow]:
    """Every tenant of the report, in its order (by name)."""
    return [row(t) for t in report.tenants]


def render_drift_csv(report: DriftReport) -> str:
    """One CSV row per tenant under a header row (RFC 4180, CRLF line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([header for _, header in COLUMNS])
    for fleet_row in rows(report):
        writer.writerow([escape.csv_cell(fleet_row.cell(key)) for key, _ in COLUMNS])
    return buffer.getvalue()


def counts(report: DriftReport) -> list[tuple[str, str, int]]:
    """(status, label, count) for the summary at the top of the page."""
    summary = summary_counts(report)
    return [
        ("all", "tenants", len(report.tenants)),
        ("drifted", "drifted", summary["drifted"]),
        ("unhealthy", "unhealthy", summary["unhealthy"]),
        ("error", "unreadable", summary["errors"]),
        ("clean", "clean", summary["clean"]),
        # Tenants not contacted on purpose, when the report has any.
        *([("paused", "paused", summary["paused"])] if summary["paused"] else []),
    ]
