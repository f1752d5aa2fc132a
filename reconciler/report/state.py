"""The applied-state record (`--state FILE`) for people: text and Markdown. It
holds secret references (names such as `${env:T1_SMTP}`), never a value."""

from __future__ import annotations

from reconciler.model import AppliedRecord, AppliedSecret
from reconciler.report.style import MARKDOWN_LIMIT, md_cell, show, truncate_markdown


def state_summary(record: AppliedRecord) -> str:
    """`Applied state: N tenant(s) recorded.`"""
    return f"Applied state: {len(record.tenants)} tenant(s) recorded."


def render_state_text(record: AppliedRecord) -> str:
    """One line per recorded tenant: its URL, secret reference and rotation marker."""
    lines = [
        f"  {show(name)} ({show(entry.url)}): "
        + (
            "configuration deleted"
            if entry.secret is None
            else f"secret {show(entry.secret)}, rotation {show(entry.rotation)}"
        )
        for name, entry in sorted(record.tenants.items())
    ]
    return "\n".join([*lines, "", state_summary(record)]) + "\n"


def render_state_markdown(record: AppliedRecord, *, limit: int = MARKDOWN_LIMIT) -> str:
    """A table of the recorded tenants, under `limit` characters."""
    head = (
        f"## qlik-email applied state\n\n**{state_summary(record)}**\n\n"
        "| tenant | url | secret reference | rotation |\n|---|---|---|---|\n"
    )
    return truncate_markdown(head, sorted(record.tenants.items()), _md_row, "", limit)


def _md_row(item: tuple[str, AppliedSecret]) -> str:
    name, entry = item
    return (
        f"| {md_cell(name)} | {md_cell(entry.url)} | {md_cell(entry.secret or '(deleted)')} | "
        f"{md_cell(entry.rotation or '-')} |\n"
    )
