"""`qlik-email show`: render a JSON document the tool wrote (a saved plan, an
apply or drift report, the applied-state record), contacting no tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler.cli.app import State
from reconciler.cli.common import Rendered, apply_output, drift_output, emit, plan_output
from reconciler.cli.options import format_option, markdown_option
from reconciler.documents.plan import PLAN_KIND, load_plan
from reconciler.documents.state import STATE_KIND, load_record, state_document
from reconciler.errors import ReportFileError
from reconciler.jsonfile import read_json

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
    document = _read(path)
    kind = _kind(path, document)
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
    _check(path, kind, document)
    if kind == APPLY_KIND:
        from reconciler.documents.apply import apply_report_from_document

        return apply_output(apply_report_from_document(document))
    from reconciler.documents.drift import drift_report_from_document

    return drift_output(drift_report_from_document(document))


def _read(path: Path) -> Any:
    """The JSON document at `path`, read within the bounds of `read_json`."""
    try:
        return read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReportFileError(f"{path}: cannot read the file: {exc}") from None


def _kind(path: Path, document: Any) -> str:
    """The `kind` of `document` (read from `path`), one this version writes."""
    kind = document.get("kind") if isinstance(document, dict) else None
    if kind not in _KINDS:
        raise ReportFileError(
            f"{path}: not a document qlik-email writes (a plan from plan --out, an apply "
            "or drift report from --report, or the applied-state record from --state)"
        )
    return str(kind)


def _check(path: Path, kind: str, document: dict[str, Any]) -> None:
    """Refuse the report read from `path` unless it is valid for its `kind`."""
    from reconciler.jsonschemas import schema_problem

    schema = f"{kind.removeprefix('qlik-email/')}.schema.json"
    problem = schema_problem(schema, document)
    if problem is not None:
        raise ReportFileError(
            f"{path}: an {_KINDS[kind]} this version of qlik-email cannot read ({problem})"
        )
