"""Apply reports: text, versioned JSON (schemas/apply-report.schema.json), Markdown."""

from __future__ import annotations

from reconciler.engine.applier import ApplyReport, Outcome, TenantResult, Waves
from reconciler.report.style import (
    MARKDOWN_LIMIT,
    Painter,
    md_cell,
    paused_line,
    truncate_markdown,
    unreadable_line,
)

_MARK = {
    Outcome.APPLIED: ("ok", "green"),
    Outcome.VERIFY_FAILED: ("!!", "yellow"),
    Outcome.FAILED: ("xx", "red"),
    Outcome.SKIPPED: ("--", "yellow"),
    Outcome.UNCHANGED: ("  ", "dim"),
    Outcome.NOT_READ: ("xx", "red"),
    Outcome.PAUSED: ("||", "dim"),
}
_EMOJI = {
    Outcome.APPLIED: ":white_check_mark:",
    Outcome.VERIFY_FAILED: ":warning:",
    Outcome.FAILED: ":x:",
    Outcome.SKIPPED: ":fast_forward:",
    Outcome.UNCHANGED: "",
    Outcome.NOT_READ: ":x:",
    Outcome.PAUSED: ":pause_button:",
}


def apply_summary(report: ApplyReport) -> str:
    """`Apply: N applied, N verify failed, N failed, N skipped, N unchanged.`"""
    line = (
        f"Apply: {report.count(Outcome.APPLIED)} applied, "
        f"{report.count(Outcome.VERIFY_FAILED)} verify failed, "
        f"{report.count(Outcome.FAILED)} failed, "
        f"{report.count(Outcome.SKIPPED)} skipped, {report.count(Outcome.UNCHANGED)} unchanged."
    )
    if report.count(Outcome.PAUSED):
        line += f" {report.count(Outcome.PAUSED)} paused (not contacted)."
    if report.not_read:
        line += f" {len(report.not_read)} tenant(s) could not be read."
    return line + (" Interrupted." if report.interrupted else "")


def waves_line(waves: Waves) -> str:
    """`Waves: 2 of 5 ran (3 tenant(s) each); stopped after a failure in wave 2.`"""
    line = f"Waves: {waves.ran} of {waves.planned} ran ({waves.size} tenant(s) each)"
    if waves.stopped:
        return f"{line}; stopped after a failure in wave {waves.ran}."
    return f"{line}."


def render_apply_text(report: ApplyReport, *, color: bool = False) -> str:
    """One line per tenant that apply touched or tried to, then the summary."""
    paint = Painter(color)
    lines = [_text_line(r, paint) for r in report.results if _shown(r)]
    if not lines:
        lines.append("Nothing to apply.")
    lines += ["", paint(apply_summary(report), "bold")]
    if report.waves is not None:
        lines.append(paint(waves_line(report.waves), "red" if report.waves.stopped else "bold"))
    return "\n".join(lines) + "\n"


def _shown(result: TenantResult) -> bool:
    """Unchanged tenants are listed only when there is something to say."""
    return result.outcome is not Outcome.UNCHANGED or bool(result.message)


def _text_line(result: TenantResult, paint: Painter) -> str:
    mark, colour = _MARK[result.outcome]
    if result.outcome is Outcome.NOT_READ:
        return paint(unreadable_line(result.tenant, result.url, result.message), colour)
    if result.outcome is Outcome.PAUSED:
        return paint(paused_line(result.tenant, result.url, result.message), colour)
    if result.outcome is Outcome.UNCHANGED and result.message:
        # e.g. "already applied": the plan's action did not happen, nor was it needed.
        return paint(f"{mark} {result.tenant}: {result.message}", colour)
    head = paint(f"{mark} {result.tenant}: {result.action.value} {result.outcome.value}", colour)
    return (
        head
        + paint(f": {result.message}" if result.message else "")
        + paint(f" (test e-mail {result.test_email})" if result.test_email else "")
    )


def render_apply_markdown(report: ApplyReport, *, limit: int = MARKDOWN_LIMIT) -> str:
    """Markdown for a job summary or a comment, failures first, under `limit`."""
    head = f"## qlik-email apply\n\n**{apply_summary(report)}**\n\n"
    if report.waves is not None:
        head += f"{waves_line(report.waves)}\n\n"
    touched = [r for r in report.results if _shown(r)]
    if not touched:
        return head + "Nothing to apply.\n"
    order = [
        Outcome.NOT_READ,
        Outcome.FAILED,
        Outcome.VERIFY_FAILED,
        Outcome.SKIPPED,
        Outcome.APPLIED,
        Outcome.PAUSED,
        Outcome.UNCHANGED,
    ]
    touched.sort(key=lambda r: (order.index(r.outcome), r.tenant))
    table_head = head + "| | tenant | action | outcome | detail |\n|---|---|---|---|---|\n"
    return truncate_markdown(table_head, touched, _md_row, "", limit)


def _md_row(result: TenantResult) -> str:
    return (
        f"| {_EMOJI[result.outcome]} | {md_cell(result.tenant)} | {_md_action(result)} | "
        f"{result.outcome.value} | {md_cell(result.message)} |\n"
    )


def _md_action(result: TenantResult) -> str:
    """The plan's action, but for a tenant apply found nothing to do for."""
    return "-" if result.outcome is Outcome.UNCHANGED else result.action.value
