"""GitHub Actions workflow commands: secret masks and file annotations.

The runner reads these from a step's stdout and stderr alike; qlik-email
writes them to stderr, so that stdout holds only the report. `::add-mask::VALUE`
hides VALUE in every later log line, `::error file=F,line=L,col=C::MESSAGE`
puts an annotation on a line of a file (shown on the pull request's diff). Data and property
values are escaped as GitHub's toolkit does (`%`, CR and LF; in properties also
`:` and `,`), so a message can never end a command early or start another one;
invisible characters in them are shown as visible escapes (`escape.terminal`,
line by line: a message may span lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.errors import ConfigIssue
from reconciler.report import escape

TITLE = "qlik-email"


def in_github_actions(env: Mapping[str, str]) -> bool:
    """True inside a GitHub Actions job (the runner sets GITHUB_ACTIONS=true)."""
    return env.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    """Escape the message part of a workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value (`file=...`, `title=...`) of a workflow command."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def add_mask_commands(value: str) -> list[str]:
    """`::add-mask::` lines that hide `value` in the log: one per line of it, because
    the log is masked line by line."""
    return [f"::add-mask::{escape_data(line)}" for line in value.splitlines() if line.strip()]


def error_annotation(issue: ConfigIssue) -> str:
    """One `::error` command for a configuration problem at file:line:column."""
    properties = {
        "file": issue.file,
        "line": str(issue.line),
        "col": str(issue.column),
        "title": TITLE,
    }
    joined = ",".join(
        f"{key}={escape_property(escape.terminal(value))}" for key, value in properties.items()
    )
    message = "\n".join(escape.terminal(line) for line in issue.message.split("\n"))
    return f"::error {joined}::{escape_data(message)}"


def error_annotations(issues: Iterable[ConfigIssue]) -> str:
    """The annotation lines for every issue, newline-terminated."""
    return "".join(error_annotation(issue) + "\n" for issue in issues)
