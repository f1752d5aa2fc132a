"""Drift reports: text, versioned JSON (schemas/drift-report.schema.json), Markdown."""

from __future__ import annotations

from reconciler.documents.drift import summary_counts
from reconciler.engine.drift import (
    DriftReport,
    TenantDrift,
)
from reconciler.report import escape
from reconciler.report.plan import resend_reason
from reconciler.report.style import (
    MARKDOWN_LIMIT,
    Painter,
    md_cell,
    paused_line,
    show,
    truncate_markdown,
    unreadable_line,
)


def drift_summary(report: DriftReport) -> str:
    """`Drift: N drifted (N also unhealthy), N unhealthy, N unreadable, N clean.`"""
    counts = summary_counts(report)
    both = counts["driftedAndUnhealthy"]
    also = f" ({both} also unhealthy)" if both else ""
    paused = f", {counts['paused']} paused" if counts["paused"] else ""
    return (
        f"Drift: {counts['drifted']} drifted{also}, {counts['unhealthy']} unhealthy, "
        f"{counts['errors']} unreadable, {counts['clean']} clean{paused}."
    )


def change_text(tenant: TenantDrift) -> list[str]:
    """One line per field that drifted: live and desired values, never a secret."""
    lines = []
    for c in tenant.changes:
        if c.sensitive and c.compared_with == "state":  # drift --state
            why = escape.terminal(resend_reason(c))
            lines.append(f"{c.field}: not applied yet ({why}); the next apply re-sends it")
        elif c.sensitive:
            lines.append(f"{c.field}: secret missing on the tenant (passwordExists false)")
        else:
            lines.append(f"{c.field}: live {show(c.before)}, desired {show(c.after)}")
    return lines


def render_drift_text(report: DriftReport, *, color: bool = False) -> str:
    """One block per tenant that is not clean, then the summary and fingerprint."""
    paint = Painter(color)
    lines: list[str] = []
    for tenant in report.tenants:
        if tenant.error:
            lines.append(paint(unreadable_line(tenant.tenant, tenant.url, tenant.error), "red"))
            continue
        if tenant.paused:
            lines.append(paint(paused_line(tenant.tenant, tenant.url, tenant.paused), "dim"))
            continue
        if tenant.clean and not tenant.ignored:
            continue
        status = "drifted" if tenant.drifted else ("unhealthy" if tenant.unhealthy else "clean")
        lines.append(
            paint(
                f"{'~ ' if tenant.drifted else '! ' if tenant.unhealthy else '  '}"
                f"{tenant.tenant} ({tenant.url}): {status}",
                "yellow" if status != "clean" else "dim",
            )
        )
        lines += [paint(f"    ~ {text}") for text in change_text(tenant)]
        lines += [paint(f"    ! {p.message}") for p in tenant.problems]
        lines += [paint(f"    (ignored) {field}: {reason}") for field, reason in tenant.ignored]
    if len(lines) == summary_counts(report)["paused"]:  # nothing but paused tenants
        lines.append(
            "No drift: every tenant matches the configuration and is healthy."
            if not lines
            else "No drift: every tenant that was read matches the configuration and is healthy."
        )
    lines += ["", paint(drift_summary(report), "bold"), f"Fingerprint: {report.fingerprint}"]
    return "\n".join(lines) + "\n"


def render_drift_markdown(report: DriftReport, *, limit: int = MARKDOWN_LIMIT) -> str:
    """Markdown for an issue body or a job summary, under `limit` characters."""
    head = (
        f"## qlik-email drift\n\n**{drift_summary(report)}**\n\n"
        f"Fingerprint: `{report.fingerprint}`\n\n"
    )
    paused = [t for t in report.tenants if t.paused]
    if paused:
        head += f":pause_button: {len(paused)} tenant(s) paused, not contacted:\n\n"
        head += "".join(f"- {md_cell(t.tenant)}: {md_cell(t.paused or '')}\n" for t in paused[:50])
        head += "\n"
    bad = [t for t in report.tenants if not t.clean]
    if not bad:
        return head + "No drift.\n"
    table_head = head + "| tenant | drift | health |\n|---|---|---|\n"
    return truncate_markdown(table_head, bad, _md_row, "", limit)


def _md_row(tenant: TenantDrift) -> str:
    return f"| {md_cell(tenant.tenant)} | {_md_drift(tenant)} | {_md_health(tenant)} |\n"


def _md_drift(tenant: TenantDrift) -> str:
    return md_cell("; ".join(change_text(tenant)) or "-")


def _md_health(tenant: TenantDrift) -> str:
    if tenant.error:
        return md_cell(f"unreadable: {tenant.error}")
    return md_cell("; ".join(p.message for p in tenant.problems) or "-")
