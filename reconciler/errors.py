"""The exceptions of qlik-email.

    ReconcilerError            base: a problem the user can act on (exit 1, no traceback)
    +-- ConfigError            invalid configuration files (each issue has file:line:col)
    +-- SecretError            a secret reference that cannot be resolved, or is not allowed here
    +-- RequestError           a request that cannot be built (a tenant URL, a field)
    +-- ApiError               the Transports API answered with an error, or could not be reached
    |   +-- AuthError          the credentials were refused (401, or the token endpoint refused)
    |   +-- NotAdminError      403 ROLECHECK-1: the credentials are not a tenant admin
    +-- UnsafePlanError        a plan exceeds the safety thresholds (needs --force)
    +-- PlanFileError          a saved plan file is unreadable or from another version
    +-- StateFileError         the applied-state file (--state) is unreadable or cannot be written
    +-- ReportFileError        JSON reports that cannot be merged (unreadable, mixed, overlapping)

Anything else that escapes is a bug: the CLI prints it with a hint to use --debug.
"""

from __future__ import annotations

from reconciler.values import valueclass


class ReconcilerError(Exception):
    """Base class: an error with a message a user can act on."""


@valueclass
class ConfigIssue:
    """One problem in one configuration file, at a 1-based line and column."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class ConfigError(ReconcilerError):
    """The configuration is invalid; `issues` lists every problem found in the run."""

    def __init__(self, issues: list[ConfigIssue], notes: tuple[str, ...] = ()) -> None:
        """`notes` say what was not checked, and why (after the issues)."""
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.column, i.message))
        self.notes = notes
        count = len(self.issues)
        header = f"{count} error{'s' if count != 1 else ''} in the configuration"
        lines = [header, *(str(i) for i in self.issues), *(f"Note: {n}" for n in notes)]
        super().__init__("\n".join(lines))


class SecretError(ReconcilerError):
    """A secret reference could not be resolved or is not allowed in this command."""


class RequestError(ReconcilerError):
    """A request for one tenant cannot be built from its configuration: its URL
    is not usable, or a field holds what the API cannot take."""


class ApiError(ReconcilerError):
    """The Transports API of a tenant answered with an error or could not be reached.

    `status` is the HTTP status (None when no response arrived), `code` the first
    error code of the `{errors: [{code, title}]}` body, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        tenant: str = "",
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.tenant = tenant
        self.status = status
        self.code = code
        super().__init__(message)


class AuthError(ApiError):
    """The tenant refused our credentials (bad API key, bad OAuth client)."""


class NotAdminError(ApiError):
    """403 ROLECHECK-1: the credentials are valid but not those of a tenant admin."""


class UnsafePlanError(ReconcilerError):
    """The plan changes or deletes more tenants than the safety thresholds allow."""


class PlanFileError(ReconcilerError):
    """A saved plan file cannot be used (unreadable, wrong version, wrong config)."""


class StateFileError(ReconcilerError):
    """The record of what apply last applied (`--state FILE`) is unreadable,
    from another version, or cannot be written."""


class ReportFileError(ReconcilerError):
    """JSON reports given to `report merge` that cannot be merged: unreadable, not
    reports of this version, of different kinds, or naming the same tenant."""
