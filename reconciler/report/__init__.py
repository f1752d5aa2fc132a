"""Rendering: the only place that formats output (text, JSON, Markdown).

Functions here return strings or JSON-ready dicts; they never print.
"""

from __future__ import annotations

from reconciler.report.plan import render_plan_markdown, render_plan_text

FORMATS = ("text", "json", "markdown")

__all__ = ["FORMATS", "render_plan_markdown", "render_plan_text"]
