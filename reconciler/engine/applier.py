"""The applier: carries a Plan out, tenant by tenant, isolating failures.

Per tenant, in order: (optionally) re-read the live state and refuse the tenant
if it changed since the plan; resolve its secret (only now); PUT the whole
configuration or DELETE it; verify-connection; GET again and check that the
tenant now plans as no-op; optionally send a test e-mail (never retried).
Tenants run concurrently, bounded; one failing never stops the others.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from enum import Enum
from typing import Any, Generic, TypeVar

from reconciler.client import ApiSession, SmtpResult, TenantClient
from reconciler.client.deadline import Deadline, DeadlineExceeded, within
from reconciler.engine.fleet import Failed, Progress, client_for, guarded, run_bounded
from reconciler.engine.planner import desired_fingerprint, plan_tenant
from reconciler.errors import ApiError, ReconcilerError, SecretError
from reconciler.model import Action, Plan, TenantPlan, TenantSpec
from reconciler.secrets import SecretResolver
from reconciler.values import valueclass

log = logging.getLogger("reconciler.applier")
T = TypeVar("T")

TEST_SUBJECT = "qlik-email test message"
TEST_BODY = "This message was sent by qlik-email to check the tenant's e-mail configuration."


class Outcome(str, Enum):
    """How one tenant ended."""

    APPLIED = "applied"  # changed, verified, and read back as converged
    VERIFY_FAILED = "verify-failed"  # changed, but verify-connection or the read-back failed
    FAILED = "failed"  # not changed (the old config is in place), see message
    SKIPPED = "skipped"  # not attempted: stale plan, interrupted, or not in the config
    UNCHANGED = "unchanged"  # nothing to do
    NOT_READ = "not-read"  # its live state could not be read: nothing planned or sent
    PAUSED = "paused"  # paused in its file: not contacted


@valueclass
class TenantResult:
    """What apply did to one tenant."""

    tenant: str
    url: str
    action: Action
    outcome: Outcome
    message: str = ""
    verified: bool | None = None
    test_email: str | None = None  # "sent" or the reason it was not
    duration_s: float = 0.0

    @classmethod
    def of(
        cls, tenant: TenantPlan, outcome: Outcome, message: str = "", **more: Any
    ) -> TenantResult:
        """The result of `tenant`'s plan ending with `outcome`."""
        return cls(tenant.tenant, tenant.url, tenant.action, outcome, message, **more)


@valueclass
class WaveSize:
    """`--wave N` (tenants per wave) or `--wave N%` (of the tenants to change)."""

    amount: int
    percent: bool = False

    def of(self, total: int) -> int:
        """Tenants per wave when `total` tenants are to be changed (at least one)."""
        if self.percent:
            return max(1, math.ceil(total * self.amount / 100))
        return max(1, self.amount)

    def __str__(self) -> str:
        return f"{self.amount}{'%' if self.percent else ''}"


@valueclass
class Waves:
    """How an apply in waves went: `size` tenants per wave, `planned` waves,
    `ran` of them started; `stopped` when a wave's failure stopped the rest."""

    size: int
    planned: int
    ran: int
    stopped: bool = False


@valueclass
class ApplyReport:
    """Every tenant's result, sorted by name; `interrupted` when stopped early;
    `shard` is the `--shard I/N` it covers (None: every selected tenant);
    `waves` how an apply in waves went (None: all at once)."""

    results: tuple[TenantResult, ...]
    interrupted: bool = False
    shard: str | None = None
    waves: Waves | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(
            r.outcome in (Outcome.APPLIED, Outcome.UNCHANGED, Outcome.PAUSED) for r in self.results
        )

    @property
    def not_read(self) -> tuple[TenantResult, ...]:
        """The tenants whose live state could not be read."""
        return tuple(r for r in self.results if r.outcome is Outcome.NOT_READ)


@valueclass
class ApplyOptions:
    """How to apply. `recheck` re-reads each tenant first and refuses it when its
    live state no longer matches the plan (saved or confirmed plans);
    `allow_delete` and `force` pass the safety checks (`engine.safety`);
    `rotate_secrets` re-sends every selected tenant's secret; `test_email` is a
    recipient to send a test message to once a tenant is verified; `wave`
    applies that many tenants at a time, and stops after a wave with a failure."""

    recheck: bool = True
    verify: bool = True
    test_email: str | None = None
    allow_delete: bool = False
    force: bool = False
    rotate_secrets: bool = False
    wave: WaveSize | None = None


def changed_tenants(plan: Plan) -> list[TenantPlan]:
    """The tenants of `plan` that apply writes to."""
    return [
        t
        for t in plan.tenants
        if t.error is None and t.paused is None and t.action is not Action.NOOP
    ]


def unchanged_report(plan: Plan) -> ApplyReport:
    """The report of a run that had nothing to apply."""
    return ApplyReport(tuple(_not_written(t) for t in plan.tenants), shard=plan.shard)


def _not_written(tenant: TenantPlan) -> TenantResult:
    """The result of a tenant apply has nothing to write to."""
    if tenant.error is not None:
        return _untouched(tenant)
    if tenant.paused is not None:
        return TenantResult.of(tenant, Outcome.PAUSED, tenant.paused)
    return TenantResult.of(tenant, Outcome.UNCHANGED)


async def apply_plan(
    session: ApiSession,
    plan: Plan,
    specs: Mapping[str, TenantSpec],
    resolver: SecretResolver,
    options: ApplyOptions,
    *,
    concurrency: int,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
    deadline: Deadline | None = None,
) -> ApplyReport:
    """Carry `plan` out. Tenants with no change are reported unchanged; tenants
    whose plan holds a read error are reported failed. Each tenant's steps must
    end within `deadline`, or the tenant fails."""
    work = changed_tenants(plan)

    async def run(tenant: TenantPlan) -> TenantResult:
        spec = specs.get(tenant.tenant)
        result = await _apply_tenant(session, tenant, spec, resolver, options, deadline)
        if progress is not None:
            progress.step(tenant.tenant, result.outcome.value, result.outcome in FAILURES)
        return result

    size = options.wave.of(len(work)) if options.wave is not None else max(1, len(work))
    waves = [work[start : start + size] for start in range(0, len(work), size)]
    results: list[TenantResult] = []
    ran = 0
    for wave in waves:
        if stop is not None and stop.is_set():
            break
        ran += 1
        done = await run_bounded(wave, run, concurrency, stop)
        results += [r for r in done if r is not None]
        if any(r is not None and r.outcome in FAILURES for r in done):
            break
    finished = {r.tenant for r in results}
    interrupted = stop is not None and stop.is_set()
    why = "interrupted before it started" if interrupted else _stopped(ran)
    results += [TenantResult.of(t, Outcome.SKIPPED, why) for t in work if t.tenant not in finished]
    results += [_not_written(t) for t in plan.tenants if t.error is not None or _noop(t)]
    ordered = tuple(sorted(results, key=lambda r: r.tenant))
    summary = None
    if options.wave is not None:
        summary = Waves(size, len(waves), ran, stopped=ran < len(waves) and not interrupted)
    return ApplyReport(ordered, interrupted=interrupted, shard=plan.shard, waves=summary)


def _stopped(wave: int) -> str:
    return f"not started: wave {wave} had a failure, so the rollout stopped (--wave)"


FAILURES = frozenset({Outcome.FAILED, Outcome.VERIFY_FAILED})


def _noop(tenant: TenantPlan) -> bool:
    return tenant.error is None and tenant.action is Action.NOOP


def _untouched(tenant: TenantPlan) -> TenantResult:
    return TenantResult.of(tenant, Outcome.NOT_READ, tenant.error or "")


async def _apply_tenant(
    session: ApiSession,
    tenant: TenantPlan,
    spec: TenantSpec | None,
    resolver: SecretResolver,
    options: ApplyOptions,
    deadline: Deadline | None,
) -> TenantResult:
    started = time.monotonic()
    name = tenant.tenant
    steps = functools.partial(_write_verify_read_back, session, tenant, spec, resolver, options)
    outcome = await guarded(name, "applying", _within_deadline(deadline, tenant, steps))
    if isinstance(outcome, Failed):
        result = TenantResult.of(tenant, Outcome.FAILED, outcome.message)
    else:
        result = outcome
    log.info("tenant %s: %s %s", tenant.tenant, result.outcome.value, result.message)
    return replace(result, duration_s=round(time.monotonic() - started, 3))


async def _write_verify_read_back(
    session: ApiSession,
    tenant: TenantPlan,
    spec: TenantSpec | None,
    resolver: SecretResolver,
    options: ApplyOptions,
) -> TenantResult:
    if spec is None:
        return TenantResult.of(tenant, Outcome.SKIPPED, "no longer in the configuration")
    if desired_fingerprint(spec) != tenant.desired_fingerprint:
        why = "its configuration changed since the plan was made; plan again"
        return TenantResult.of(tenant, Outcome.SKIPPED, why)
    client = client_for(session, spec, resolver)
    if options.recheck:
        live = await client.read_live()
        if live.fingerprint != tenant.live_fingerprint:
            if plan_tenant(spec, live).action is Action.NOOP:
                # The plan's change is live already (applied before, by this plan
                # or another way): nothing to do, and nothing went wrong.
                return TenantResult.of(tenant, Outcome.UNCHANGED, "already applied")
            why = "its live configuration changed since the plan was made; plan again"
            return TenantResult.of(tenant, Outcome.SKIPPED, why)
    if tenant.action is Action.DELETE:
        return await _delete(client, tenant, spec)
    return await _put(client, tenant, spec, resolver, options)


async def _delete(client: TenantClient, tenant: TenantPlan, spec: TenantSpec) -> TenantResult:
    deleted = await _write(client, spec, client.delete_email_config())
    note = deleted.note
    if deleted.answer is False:
        note = "already had no configuration (404); "
    return await _after_write(_read_back(client, tenant, spec, verified=None, note=note), tenant)


@valueclass
class _Written(Generic[T]):
    """What a PUT or DELETE gave: its `answer`, or (None) `note` says it got no
    usable answer and a read-back showed that it took effect."""

    answer: T | None
    note: str = ""


async def _write(client: TenantClient, spec: TenantSpec, write: Awaitable[T]) -> _Written[T]:
    """Run a PUT or DELETE. When it fails without a usable answer (no response, a
    5xx after retries, or a success whose body could not be read), the change
    may still have happened: read the tenant back and, if it converged, carry on
    with a note instead of reporting a failure."""
    try:
        return _Written(await write)
    except ApiError as exc:
        if exc.status is not None and exc.status < 500 and not 200 <= exc.status < 300:
            raise
        try:
            converged = plan_tenant(spec, await client.read_live())
        except ReconcilerError as again:
            detail = f"; whether the change took effect is unknown (the read-back failed: {again})"
            raise _amended(exc, detail) from None
        if converged.action is not Action.NOOP:
            raise _amended(exc, " (a read-back shows the change was not made)") from None
        return _Written(
            None, "the write got no usable answer, but a read-back shows it took effect; "
        )


def _amended(exc: ApiError, detail: str) -> ApiError:
    """`exc` with `detail` added to its message."""
    return ApiError(f"{exc}{detail}", tenant=exc.tenant, status=exc.status, code=exc.code)


async def _within_deadline(
    deadline: Deadline | None, tenant: TenantPlan, steps: Callable[[], Awaitable[TenantResult]]
) -> TenantResult:
    """`steps` within the tenant's write deadline; cut off, the tenant failed,
    perhaps after its write."""
    name = tenant.tenant
    try:
        return await within(deadline, name, f"applying to {name}", steps)
    except DeadlineExceeded as exc:
        why = f"{exc}; whether its change took effect is unknown (a plan shows it)"
        return TenantResult.of(tenant, Outcome.FAILED, why)


async def _after_write(step: Awaitable[TenantResult], tenant: TenantPlan) -> TenantResult:
    """Run the checks that follow a successful write: an error there means the
    change was made but could not be confirmed, which is not a failed write."""
    outcome = await guarded(tenant.tenant, "confirming the write", step)
    if not isinstance(outcome, Failed):
        return outcome
    why = f"saved, but could not be confirmed: {outcome.message}"
    return TenantResult.of(tenant, Outcome.VERIFY_FAILED, why)


async def _put(
    client: TenantClient,
    tenant: TenantPlan,
    spec: TenantSpec,
    resolver: SecretResolver,
    options: ApplyOptions,
) -> TenantResult:
    email = spec.email
    assert email is not None and email.secret is not None  # the planner only PUTs desired configs
    try:
        secret = resolver.resolve(email.secret)  # resolved only now, and only for this tenant
    except SecretError as exc:
        raise SecretError(f"{email.secret_source or spec.source}: {exc}") from None
    written = await _write(client, spec, client.put_email_config(email, secret))
    return await _after_write(_verify(client, tenant, spec, options, written.note), tenant)


async def _verify(
    client: TenantClient, tenant: TenantPlan, spec: TenantSpec, options: ApplyOptions, note: str
) -> TenantResult:
    verify: SmtpResult | None = await client.verify_connection() if options.verify else None
    if verify is not None and not verify.success:
        message = f"{note}saved, but verify-connection failed: {verify.message or 'no message'}"
        message += " (connection failed)" if verify.connection_failed else ""
        return TenantResult.of(tenant, Outcome.VERIFY_FAILED, message, verified=False)
    result = await _read_back(client, tenant, spec, verified=verify is not None, note=note)
    if options.test_email and result.outcome is Outcome.APPLIED:
        return _with_test_email(result, await _send_test(client, options.test_email))
    return result


async def _read_back(
    client: TenantClient, tenant: TenantPlan, spec: TenantSpec, *, verified: bool | None, note: str
) -> TenantResult:
    after = plan_tenant(spec, await client.read_live())
    if after.action is not Action.NOOP:
        fields = ", ".join(c.field for c in after.changes) or after.action.value
        message = f"{note}read back, but still differs from the desired state ({fields})"
        return TenantResult.of(tenant, Outcome.VERIFY_FAILED, message, verified=verified)
    message = note + ("verified" if verified else "converged")
    return TenantResult.of(tenant, Outcome.APPLIED, message, verified=verified)


@valueclass
class _TestEmail:
    """How the test e-mail went: `sent`, and what the report says of it."""

    sent: bool
    text: str


async def _send_test(client: TenantClient, recipient: str) -> _TestEmail:
    try:
        sent = await client.send_test_email(recipient, TEST_SUBJECT, TEST_BODY)
    except ApiError as exc:
        if exc.status is None or exc.status >= 500:
            # It may have been sent: it is not retried, so no one gets it twice.
            return _TestEmail(False, f"outcome unknown, not retried: {exc}")
        return _TestEmail(False, f"not sent: {exc}")
    except ReconcilerError as exc:
        return _TestEmail(False, f"not sent: {exc}")
    if sent.success:
        return _TestEmail(True, "sent")
    return _TestEmail(False, f"not sent: {sent.message}")


def _with_test_email(result: TenantResult, test: _TestEmail) -> TenantResult:
    if test.sent:
        return replace(result, test_email=test.text)
    return replace(
        result,
        outcome=Outcome.VERIFY_FAILED,
        message=f"{result.message}, but the test e-mail failed",
        test_email=test.text,
    )
