"""Plan reports: Terraform-like text, a versioned JSON document, and Markdown."""

from __future__ import annotations

from reconciler.model import (
    NOT_RECORDED,
    UNMANAGED_NOTE,
    Action,
    FieldChange,
    Plan,
    TenantPlan,
    Unmanaged,
)
from reconciler.report import escape
from reconciler.report.style import (
    MARKDOWN_LIMIT,
    Painter,
    md_cell,
    paused_line,
    show,
    truncate_markdown,
    unreadable_line,
)

_SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.NOOP: " ",
}
_COLOUR = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.REPLACE: "yellow",
    Action.DELETE: "red",
    Action.NOOP: "dim",
}
_VERB = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.REPLACE: "will be replaced",
    Action.DELETE: "will have its e-mail configuration deleted",
}


def summary_line(plan: Plan) -> str:
    """`Plan: N to create, N to update, N to delete, N unchanged.` (replacements
    count as updates and are called out after the line)."""
    updates = plan.count(Action.UPDATE) + plan.count(Action.REPLACE)
    line = (
        f"Plan: {plan.count(Action.CREATE)} to create, {updates} to update, "
        f"{plan.count(Action.DELETE)} to delete, {plan.count(Action.NOOP)} unchanged."
    )
    replaced = plan.count(Action.REPLACE)
    if replaced:
        line += f" ({replaced} of the updates switch provider.)"
    return line


def render_plan_text(plan: Plan, *, color: bool = False) -> str:
    """The Terraform-like plan for a terminal or a log."""
    paint = Painter(color)
    changed = _changed(plan)
    lines: list[str] = []
    for tenant in plan.errors:
        lines.append(paint(unreadable_line(tenant.tenant, tenant.url, tenant.error or ""), "red"))
    if plan.errors:
        lines.append("")
    if changed:
        lines += ["qlik-email will perform the following actions:", ""]
        for tenant in changed:
            lines += _text_tenant(tenant, paint)
    elif plan.errors or plan.not_read or plan.paused:
        lines += [f"No changes for the {len(plan.planned)} tenant(s) that were read.", ""]
    else:
        lines += [
            "No changes. The e-mail configuration of every tenant matches the desired state.",
            "",
        ]
    lines += _text_not_read(plan, paint)
    for tenant in plan.paused:
        lines.append(paint(paused_line(tenant.tenant, tenant.url, tenant.paused or ""), "dim"))
    if plan.paused:
        lines.append("")
    for gone in plan.unmanaged:
        lines.append(paint(unmanaged_line(gone), "yellow"))
    if plan.unmanaged:
        lines.append("")
    lines.append(paint(summary_line(plan), "bold"))
    if plan.paused:
        lines.append(paint(paused_count(plan), "dim"))
    if plan.not_read:
        lines.append(paint(not_read_line(plan), "yellow"))
    for tenant, change in _moves(plan):
        lines.append(
            paint(
                f"Tenant {escape.terminal(tenant.tenant)} {change.field}: "
                f"{moved_reference(change)}.",
                "yellow",
            )
        )
    if plan.errors:
        lines.append(paint(f"{len(plan.errors)} tenant(s) could not be read.", "red"))
    for need in plan.needs:
        lines.append(paint(f"Note: apply will need {need.flag}: {need.reason}.", "yellow"))
    return "\n".join(lines) + "\n"


def _text_tenant(tenant: TenantPlan, paint: Painter, verb: str | None = None) -> list[str]:
    symbol = _SYMBOL[tenant.action]
    colour = _COLOUR[tenant.action]
    header = f"  # tenant {tenant.tenant} ({tenant.url}) {verb or _VERB[tenant.action]}"
    if tenant.action is Action.REPLACE and tenant.provider_before and tenant.provider_after:
        header += f" (provider {tenant.provider_before.value} -> {tenant.provider_after.value})"
    width = max((len(c.field) for c in tenant.changes), default=0)
    body = [_text_change(change, tenant.action, width, paint) for change in tenant.changes]
    return [
        paint(header, "bold"),
        paint(f"{symbol:>3} tenant {show(tenant.tenant)} {{", colour),
        *body,
        "    }",
        "",
    ]


def _text_change(change: FieldChange, action: Action, width: int, paint: Painter) -> str:
    name = change.field.ljust(width)
    if change.sensitive:
        symbol, colour = ("~", "yellow") if action is Action.UPDATE else ("+", "green")
        moved = f" {moved_reference(change)}" if change.after_ref else ""
        return paint(f"      {symbol} {name} = {show(None, sensitive=True)}{moved}", colour)
    if change.before is None:
        return paint(f"      + {name} = {show(change.after)}", "green")
    if change.after is None:
        return paint(f"      - {name} = {show(change.before)} -> null", "red")
    return paint(f"      ~ {name} = {show(change.before)} -> {show(change.after)}", "yellow")


def moved_reference(change: FieldChange) -> str:
    """`secret will be re-sent (reference changed: ${env:OLD} -> ${env:NEW};
    rotation 2 -> 3), sent to HOST:PORT` for a secret whose reference or rotation
    marker moved (references are names, never values)."""
    return escape.terminal(
        f"secret will be re-sent ({resend_reason(change)}), sent to {change.sent_to}"
    )


def resend_reason(change: FieldChange) -> str:
    """Why a secret is re-sent: its reference changed, its rotation marker
    changed, or apply has no record of having sent it."""
    if change.before_ref == NOT_RECORDED:
        return f"not recorded as applied yet: {change.after_ref}"
    reasons = []
    if change.before_ref != change.after_ref:
        reasons.append(f"reference changed: {change.before_ref} -> {change.after_ref}")
    if change.before_rotation != change.after_rotation:
        before, after = change.before_rotation or "(none)", change.after_rotation or "(none)"
        reasons.append(f"rotation {before} -> {after}")
    return "; ".join(reasons) or f"reference {change.after_ref}"


def unmanaged_line(gone: Unmanaged) -> str:
    """How a text report names a tenant whose file the pull request removed."""
    return f"?? {gone.name} ({gone.url}): {UNMANAGED_NOTE}"


def paused_count(plan: Plan) -> str:
    """How many tenants are paused in their files."""
    return f"{len(plan.paused)} tenant(s) paused: not contacted, nothing planned."


def _changed(plan: Plan) -> list[TenantPlan]:
    return [
        t
        for t in plan.tenants
        if t.error is None and t.paused is None and t.action is not Action.NOOP
    ]


def not_read_line(plan: Plan) -> str:
    """How many tenants were deliberately not contacted, and why."""
    reasons = sorted({t.not_read or "" for t in plan.not_read})
    return f"{len(plan.not_read)} tenant(s) not read: {'; '.join(reasons)}."


def _moves(plan: Plan) -> list[tuple[TenantPlan, FieldChange]]:
    return [(t, c) for t in plan.tenants for c in t.changes if c.after_ref is not None]


def _text_not_read(plan: Plan, paint: Painter) -> list[str]:
    if not plan.not_read:
        return []
    lines = [paint("Not read until merge; their desired state:", "yellow"), ""]
    for tenant in plan.not_read:
        lines += _text_tenant(tenant, paint, f"is not read ({tenant.not_read})")
    return lines


def render_plan_markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT) -> str:
    """Markdown for a pull-request comment or a job summary: the summary first,
    then a table of changed tenants, then details collapsed per tenant; kept
    under `limit` characters (GitHub comments stop at 65,536)."""
    head = ["## qlik-email plan", "", f"**{summary_line(plan)}**", ""]
    for need in plan.needs:
        head += [f":warning: apply will need `{need.flag}`: {md_cell(need.reason)}.", ""]
    if plan.not_read:
        head += [f":pause_button: {md_cell(not_read_line(plan))}", ""]
        head += [f"- {md_cell(t.tenant)} ({md_cell(t.url)})" for t in plan.not_read[:50]]
        head.append("")
    if plan.unmanaged:
        count = len(plan.unmanaged)
        head += [f":wave: {count} tenant(s) whose file this change removes:", ""]
        head += [
            f"- {md_cell(u.name)} ({md_cell(u.url)}): {UNMANAGED_NOTE}" for u in plan.unmanaged[:50]
        ]
        head.append("")
    if plan.paused:
        head += [f":pause_button: {paused_count(plan)}", ""]
        head += [f"- {md_cell(t.tenant)}: {md_cell(t.paused or '')}" for t in plan.paused[:50]]
        head.append("")
    moves = _moves(plan)
    if moves:
        head += [f":warning: {len(moves)} secret(s) will be re-sent:", ""]
        head += [
            f"- {md_cell(t.tenant)}: `{c.field}` {md_cell(moved_reference(c))}"
            for t, c in moves[:50]
        ]
        head.append("")
    if plan.errors:
        head += [f":x: {len(plan.errors)} tenant(s) could not be read:", ""]
        head += [f"- {md_cell(t.tenant)}: {md_cell(t.error or '')}" for t in plan.errors[:50]]
        head.append("")
    changed = _changed(plan)
    if not changed:
        head.append(
            "No changes for the tenants that were read."
            if plan.errors or plan.not_read or plan.paused
            else "No changes."
        )
        return "\n".join(head) + "\n"
    head += ["| | tenant | action | fields |", "|---|---|---|---|"]
    table = truncate_markdown("", changed, _md_row, "", limit // 3)
    text_head = "\n".join(head) + "\n" + table + "\n"
    return truncate_markdown(text_head, changed, _md_details, "", limit)


def _md_row(tenant: TenantPlan) -> str:
    fields = ", ".join(c.field for c in tenant.changes)
    return (
        f"| `{_SYMBOL[tenant.action].strip()}` | {md_cell(tenant.tenant)} | "
        f"{tenant.action.value} | {md_cell(fields)} |\n"
    )


def _md_details(tenant: TenantPlan) -> str:
    lines = [_text_change(c, tenant.action, 0, Painter(False)).strip() for c in tenant.changes]
    block = escape.code_block("\n".join(lines), "diff")
    return (
        f"<details><summary>{md_cell(tenant.tenant)}: {tenant.action.value}</summary>\n\n"
        f"{block}</details>\n"
    )
