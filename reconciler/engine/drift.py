"""Drift: how each tenant's live state departs from the configuration, and how
healthy the API says its e-mail configuration is. Pure: no I/O.

Known drift can be silenced by ignore rules (tenant glob, field, reason,
expiry); an expired rule silences nothing. The report carries a fingerprint
that changes only when *what* drifts changes (not counters or timestamps), so a
notifier can update one issue instead of opening one each night.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date

from reconciler.engine.planner import NOT_READ, plan_tenant
from reconciler.engine.trust import SecretMove
from reconciler.model import (
    SECRET_FIELD,
    FieldChange,
    Health,
    IgnoreRule,
    LiveEmail,
    LiveRead,
    LiveState,
    ReadFailure,
    TenantSpec,
    fingerprint,
)
from reconciler.values import valueclass

# In place of a server's free text (errorCode, statusReason, a verify message)
# for a tenant whose e-mail secret this run did not resolve: a server that stores
# the password can echo it there, and text that was not checked for the secret
# must not reach a report (the drift issue may be public).
WITHHELD = "(server text withheld: this tenant's e-mail secret is not resolved here to check it)"


@valueclass
class ConnectionCheck:
    """The outcome of a verify-connection run by `drift --verify`."""

    ok: bool
    message: str
    smtp_code: int | None = None

    def withheld(self) -> ConnectionCheck:
        """This check with its message replaced by the structured facts only."""
        code = f"SMTP response code {self.smtp_code}; " if self.smtp_code is not None else ""
        return ConnectionCheck(self.ok, f"{code}{WITHHELD}", self.smtp_code)


def withhold_text(state: LiveState) -> LiveState:
    """`state` with the health's free text (errorCode, statusReason) replaced by
    WITHHELD; the structured fields (isValid, authFailures, status code) stay."""
    health = state.health
    code = health.error_code
    return replace(
        state,
        health=replace(
            health,
            error_code=code if code in (None, "", "OK") else "withheld",
            status_reason=WITHHELD if health.status_reason else health.status_reason,
        ),
    )


@valueclass
class HealthProblem:
    """One health finding: a stable `code` (for the fingerprint) and a message."""

    code: str
    message: str


@valueclass
class LiveSummary:
    """What the fleet views show of a tenant's live configuration: who sends its
    mail, through which server, from which address (None: the provider has no
    such field)."""

    provider: str
    server_address: str | None = None
    server_port: int | None = None
    email_address: str | None = None
    sender_name: str | None = None

    @classmethod
    def of(cls, email: LiveEmail) -> LiveSummary:
        """The summary of a live configuration."""
        values = email.as_dict()

        def text(name: str) -> str | None:
            value = values.get(name)
            return None if value is None else str(value)

        port = values.get("serverPort")
        return cls(
            provider=email.provider.value,
            server_address=text("serverAddress"),
            server_port=port if isinstance(port, int) else None,
            email_address=text("emailAddress"),
            sender_name=text("senderName"),
        )


@valueclass
class TenantDrift:
    """Drift and health of one tenant; `error` when it could not be read.
    `live` summarises its live configuration (None: it has none, or it could
    not be read); `verify` is the verify-connection result of `drift --verify`."""

    tenant: str
    url: str
    changes: tuple[FieldChange, ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()  # (field, reason) silenced by a rule
    problems: tuple[HealthProblem, ...] = ()
    health: Health | None = None
    error: str | None = None
    paused: str | None = None  # the pause's reason and end: not contacted
    live: LiveSummary | None = None
    verify: ConnectionCheck | None = None

    @property
    def drifted(self) -> bool:
        return bool(self.changes)

    @property
    def unhealthy(self) -> bool:
        return bool(self.problems)

    @property
    def clean(self) -> bool:
        return not (self.changes or self.problems or self.error)

    @property
    def status(self) -> str:
        """The one word a tenant is counted under: paused, error, drifted
        (whatever its health), unhealthy or clean."""
        if self.paused:
            return "paused"
        if self.error:
            return "error"
        if self.changes:
            return "drifted"
        return "unhealthy" if self.problems else "clean"


@valueclass
class DriftReport:
    """Every tenant's drift, sorted by name, and a stable fingerprint; `shard` is
    the `--shard I/N` it covers (None: every selected tenant)."""

    tenants: tuple[TenantDrift, ...]
    fingerprint: str
    shard: str | None = None

    @property
    def clean(self) -> bool:
        return all(t.clean for t in self.tenants)


def assess(
    spec: TenantSpec,
    live: LiveState,
    rules: Sequence[IgnoreRule],
    today: date,
    verify: ConnectionCheck | None = None,
) -> TenantDrift:
    """Drift and health of one tenant; `verify` is the verify-connection run on
    it, when there was one."""
    planned = plan_tenant(spec, live)
    active = [r for r in rules if r.expires >= today and fnmatch.fnmatchcase(spec.name, r.tenant)]
    kept, ignored = [], []
    for change in planned.changes:
        rule = next((r for r in active if r.field in ("*", change.field)), None)
        if rule is None:
            kept.append(change)
        else:
            ignored.append((change.field, rule.reason))
    problems = _problems(live, verify) if live.email is not None else ()
    return TenantDrift(
        tenant=spec.name,
        url=spec.url,
        changes=tuple(kept),
        ignored=tuple(ignored),
        problems=problems,
        health=live.health,
        live=None if live.email is None else LiveSummary.of(live.email),
        verify=_bounded_check(verify) if live.email is not None else None,
    )


def _problems(live: LiveState, verify: ConnectionCheck | None) -> tuple[HealthProblem, ...]:
    health = live.health
    found = []
    # What the server says went wrong (`status.statusReason`), kept to a bound.
    reason = f": {_bounded(health.status_reason)}" if health.status_reason else ""
    has_code = health.error_code not in (None, "", "OK")
    if health.is_valid is False:
        why = "" if has_code else reason
        found.append(
            HealthProblem("invalid", f"the API reports the configuration as not valid{why}")
        )
    if has_code:
        code = _bounded(health.error_code or "", 64)
        found.append(HealthProblem(f"error:{code}", f"errorCode {code}{reason}"))
    if health.auth_failures:
        found.append(
            HealthProblem("auth-failures", f"{health.auth_failures} authentication failure(s)")
        )
    if verify is not None and not verify.ok:
        found.append(HealthProblem("verify-failed", f"verify-connection failed: {verify.message}"))
    return tuple(found)


MAX_SERVER_TEXT = 500  # characters of server text kept in a health problem


def _bounded_check(check: ConnectionCheck | None) -> ConnectionCheck | None:
    return None if check is None else replace(check, message=_bounded(check.message))


def _bounded(text: str, limit: int = MAX_SERVER_TEXT) -> str:
    """Server text on one line, cut to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_report(
    specs: Sequence[TenantSpec],
    live: Mapping[str, LiveRead],
    rules: Sequence[IgnoreRule],
    today: date,
    verified: Mapping[str, ConnectionCheck] | None = None,
    *,
    shard: str | None = None,
    paused: Sequence[tuple[str, str, str]] = (),
) -> DriftReport:
    """Assess every tenant; tenants that could not be read carry their error;
    `paused` (name, url, the pause's reason and end) are listed, not assessed."""
    results = [TenantDrift(name, url, paused=pause) for name, url, pause in paused]
    for spec in specs:
        state = live.get(spec.name, NOT_READ)
        if isinstance(state, ReadFailure):
            results.append(TenantDrift(spec.name, spec.url, error=state.message))
        else:
            results.append(assess(spec, state, rules, today, (verified or {}).get(spec.name)))
    ordered = tuple(sorted(results, key=lambda t: t.tenant))
    return DriftReport(ordered, drift_fingerprint(ordered), shard)


def with_unapplied_secrets(
    report: DriftReport, moves: Mapping[str, SecretMove], specs: Sequence[TenantSpec]
) -> DriftReport:
    """`report` with, for every tenant whose e-mail secret the record of applied
    secrets says apply has not sent yet (`drift --state`: a changed reference or
    rotation marker, or no record), that secret as drifted: the API never shows
    a secret, so only the record can tell."""
    providers = {s.name: s.email.provider for s in specs if s.email is not None}
    tenants = []
    for tenant in report.tenants:
        move = moves.get(tenant.tenant)
        if move is None or tenant.error or tenant.tenant not in providers:
            tenants.append(tenant)
            continue
        field = SECRET_FIELD[providers[tenant.tenant]]
        change = move.change(field)
        kept = tuple(c for c in tenant.changes if c.field != field)
        tenants.append(replace(tenant, changes=(*kept, change)))
    return replace(report, tenants=tuple(tenants), fingerprint=drift_fingerprint(tenants))


def drift_fingerprint(tenants: Sequence[TenantDrift]) -> str:
    """A digest of which tenants drift in which fields and which health codes:
    stable across runs while the same things are wrong."""
    findings = [
        [
            t.tenant,
            sorted(c.field for c in t.changes),
            sorted(p.code for p in t.problems),
            bool(t.error),
        ]
        for t in tenants
        if not t.clean
    ]
    return fingerprint(findings)
