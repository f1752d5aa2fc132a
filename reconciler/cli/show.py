"""`qlik-email show`: render a JSON document the tool wrote (a saved plan, an
apply or drift report, the applied-state record), contacting no tenant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from reconciler.cli.app import State
from reconciler.cli.common import Rendered, apply_output, drift_output, emit, plan_output
from reconciler.cli.options import format_option, markdown_option
from reconciler.engine.applied import STATE_KIND, load_record, state_document
from reconciler.engine.planfile import PLAN_KIND, load_plan
from reconciler.errors import ReportFileError

APPLY_KIND = "qlik-email/apply-report"
DRIFT_KIND = "qlik-email/drift-report"
# Each kind of document the tool writes, and what it is called.
_KINDS = {
    PLAN_KIND: "plan",
    APPLY_KIND: "apply report",
    DRIFT_KIND: "drift report",
    STATE_KIND: "applied-state record",
}


@click.command()
@click.argument("file", metavar="FILE.json", type=click.Path(dir_okay=False))
@format_option
@markdown_option
@click.pass_obj
def show(state: State, file: str, fmt: str, markdown_file: str | None) -> int:
    """Show FILE.json as text, JSON or Markdown: a plan saved by `plan --out`, an
    apply or drift report (`--report`, `--format json`), or the applied-state
    record (`apply --state`), recognised by its `kind`.

    Reads only the file: no configuration, no secret, no tenant. Exit 0, or 1
    when the file is not a document this version can read.
    """
    emit(state, _rendered(Path(file)), fmt, markdown_file=markdown_file)
    return 0


def _rendered(path: Path) -> Rendered:
    kind = _kind(path)
    # Plans and the state record have their own readers (those apply uses).
    if kind == PLAN_KIND:
        return plan_output(load_plan(path))
    if kind == STATE_KIND:
        from reconciler.report.state import render_state_markdown, render_state_text

        record = load_record(path)
        return Rendered(
            lambda: state_document(record),
            lambda: render_state_markdown(record),
            lambda _color: render_state_text(record),
        )
    document = _checked(path, kind)
    if kind == APPLY_KIND:
        from reconciler.report.apply import apply_report_from_document

        return apply_output(apply_report_from_document(document))
    from reconciler.report.drift import drift_report_from_document

    return drift_output(drift_report_from_document(document))


def _kind(path: Path) -> str:
    """The `kind` of the JSON document at `path`, one this version writes."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReportFileError(f"{path}: cannot read the file: {exc}") from None
    kind = document.get("kind") if isinstance(document, dict) else None
    if kind not in _KINDS:
        raise ReportFileError(
            f"{path}: not a document qlik-email writes (a plan from plan --out, an apply "
            "or drift report from --report, or the applied-state record from --state)"
        )
    return str(kind)


def _checked(path: Path, kind: str) -> dict[str, Any]:
    """The report at `path`, checked against the schema of its `kind`."""
    from reconciler.jsonschemas import schema_errors

    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    schema = f"{kind.removeprefix('qlik-email/')}.schema.json"
    errors = schema_errors(schema, document)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise ReportFileError(
            f"{path}: an {_KINDS[kind]} this version of qlik-email cannot read "
            f"({where}: {errors[0].message})"
        )
    return document
