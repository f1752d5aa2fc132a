"""The engine: one command's whole pipeline, in one event loop with one API session.

    Engine.load(path)  config -> a SelectionLoad (+ a secret resolver): loaded
                       whole first, or with stream=True while the tenants are read
    engine.plan()      read every tenant -> Plan
    engine.apply()     read -> Plan -> safety -> confirm -> PUT/DELETE, verify, read back
                       -> ApplyRun (the plan and the ApplyReport)
    engine.drift()     read (-> verify-connection) -> DriftReport
    engine.read()      read every tenant -> {name: LiveState | ReadFailure} (import)

Each call is one `asyncio.run` with one `ApiSession`, so OAuth tokens, pacing
windows and keep-alive connections serve every step of the command. The
results are finished, typed documents; rendering them is `reconciler.report`'s
job, and the CLI only prints them and picks the exit code.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from reconciler.client import ApiSession, ClientOptions
from reconciler.client.deadline import within
from reconciler.config.loader import ConfigLoad
from reconciler.engine.applied import secret_moves
from reconciler.engine.applier import (
    ApplyOptions,
    ApplyReport,
    apply_plan,
    changed_tenants,
    unchanged_report,
)
from reconciler.engine.drift import (
    ConnectionCheck,
    DriftReport,
    build_report,
    with_unapplied_secrets,
    withhold_text,
)
from reconciler.engine.fleet import (
    Failed,
    Phase,
    Progress,
    client_for,
    guarded,
    run_bounded,
    step_deadlines,
    unresolvable,
)
from reconciler.engine.planner import make_plan, paused_plan, plan_read
from reconciler.engine.safety import check_safety, needs
from reconciler.engine.selection import Loaded, Selection, SelectionLoad, SelectionSource
from reconciler.engine.trust import Trust
from reconciler.errors import SecretError
from reconciler.model import (
    AppliedRecord,
    LiveRead,
    LiveState,
    Pause,
    Plan,
    ReadFailure,
    TenantPlan,
    TenantSpec,
)
from reconciler.scrub import Scrubber
from reconciler.secrets import ResolvePolicy, SecretRef, SecretResolver
from reconciler.values import valueclass

if TYPE_CHECKING:
    from reconciler.config.base import TrustedBase

T = TypeVar("T")


class ApplyHooks:
    """What `Engine.apply` asks of its caller between planning and writing.

    The defaults show nothing and approve everything (a script that reviewed
    the plan itself); the CLI prints the plan and asks for confirmation.
    """

    def planned(self, plan: Plan) -> None:
        """The plan is ready (called before the safety checks)."""

    def confirm(self, plan: Plan) -> bool:
        """Return False to cancel before anything is written."""
        return True

    def stopping(self, signum: int) -> None:
        """SIGINT or SIGTERM arrived: no new tenant starts (`handle_signals` only)."""


@valueclass
class ApplyRun:
    """What `Engine.apply` did: the plan it carried out and the report, which is
    None when the caller cancelled at the confirmation; `signal` is the signal
    that interrupted the run, if one did."""

    plan: Plan
    report: ApplyReport | None
    signal: int | None = None

    @property
    def nothing_to_do(self) -> bool:
        """Every selected tenant already matched the configuration."""
        return not self.plan.has_changes and not self.plan.errors


class Engine:
    """Runs plan, apply, drift or a plain read over the tenants of a Selection,
    or of a SelectionSource still being loaded. Tenants are read as the source
    gives them (plan, drift and read load the configuration as they read);
    anything that needs every tenant first (apply, `selection`) loads it whole.

    `secrets` resolves the API credentials (and, for apply, the e-mail
    secrets); `progress`, when given, hears about every tenant as it goes;
    `trust` (plan and drift under `--base`, with a loaded Selection; a source
    brings its own) names the tenants that are never contacted, and the secret
    references the plan shows as moved; `record` (plan and apply under
    `--state`) is what apply last applied: a secret whose reference or
    rotation marker differs from it is re-sent.
    """

    def __init__(
        self,
        selection: Selection | SelectionSource,
        secrets: SecretResolver,
        *,
        client: ClientOptions | None = None,
        progress: Progress | None = None,
        trust: Trust | None = None,
        record: AppliedRecord | None = None,
        today: date | None = None,
    ) -> None:
        if isinstance(selection, Selection):
            source: SelectionSource = Loaded(selection, trust, today)
        elif trust is not None:
            raise ValueError("a SelectionSource brings its own base's verdict: pass no trust")
        else:
            source = selection
        self.secrets = secrets
        self.progress = progress
        self.trust = Trust()  # the source's verdict, once it is loaded
        self.record = record
        self._source = source
        self._selection: Selection | None = None
        # A base judges the pull request's files (so their contents are not trusted).
        self._under_base = source.judged
        settings = source.settings
        self._client = client or ClientOptions(
            timeout_s=settings.timeout_s, connections=source.concurrency
        )
        self.today = today or source.today
        self._deadlines = step_deadlines(settings.deadlines)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        tenants: Sequence[str] = (),
        shard: str | None = None,
        concurrency: int | None = None,
        allowed_hosts: Sequence[str] | None = None,
        allow_commands: bool = False,
        on_resolve: Callable[[str], None] | None = None,
        scrubber: Scrubber | None = None,
        progress: Progress | None = None,
        base: TrustedBase | None = None,
        stream: bool = False,
        today: date | None = None,
    ) -> Engine:
        """An engine for the configuration repository at `path`, on the tenants
        named by `tenants` (names or globs; all when empty) in `shard` ("I/N").

        `allow_commands` lets `${cmd:...}` references run and `${file:...}`
        references leave the repository: only for trusted configuration (apply
        on the main branch); plan and drift never need it. `base` is the trusted
        configuration a pull request is judged against (a git revision, or
        explicitly a directory): its security settings apply, and tenants it
        does not vouch for are not contacted. `on_resolve`
        hears every secret value resolved; `scrubber` learns them.

        Raises ConfigError when the configuration is invalid, ReconcilerError for
        a bad selection. With `stream`, only the root file is read here: the
        tenant files are loaded by `plan`, `drift` or `read` while they read the
        first tenants, and those raise the same errors, after cancelling the
        reads in flight, if a file turns out invalid. Apply, and anything that
        looks at `selection` or `tenants` first, loads them all before any
        tenant is contacted. `today` (default: the date) decides which pauses
        (`paused.until`) have ended.
        """
        if base is None:
            load, trusted = ConfigLoad(path, allowed_hosts=allowed_hosts), None
        else:
            # Here only: reading a git ref brings tarfile, tempfile and subprocess.
            from reconciler.config.base import open_against_base

            load, trusted = open_against_base(path, base, allowed_hosts=allowed_hosts)
        source = SelectionLoad(load, tenants, shard, concurrency, base=trusted, today=today)
        policy = ResolvePolicy.for_repository(source.root, allow_commands=allow_commands)
        secrets = SecretResolver(policy, on_resolve=on_resolve, scrubber=scrubber)
        engine = cls(source, secrets, progress=progress)
        if not stream:
            engine.finish_loading()
        return engine

    @property
    def selection(self) -> Selection:
        """The configuration and the tenants of this run (`finish_loading`)."""
        return self.finish_loading()

    def finish_loading(self) -> Selection:
        """Load what the source has not loaded yet, and take the base's verdict
        on it (raises ConfigError if the configuration is invalid); once."""
        if self._selection is None:
            selection, trust = self._source.finish()
            self._selection, self.trust = selection, trust or Trust()
        return self._selection

    @property
    def tenants(self) -> tuple[TenantSpec, ...]:
        """The tenants this engine works on."""
        return self.selection.tenants

    @property
    def paused(self) -> dict[str, Pause]:
        """The selected tenants paused today (never contacted), by name."""
        return {
            t.name: t.paused
            for t in self.tenants
            if t.paused is not None and t.paused.active(self.today)
        }

    @property
    def readable(self) -> tuple[TenantSpec, ...]:
        """The tenants that may be contacted (all but those paused, and those
        `trust` holds back)."""
        paused = self.paused
        return tuple(
            t for t in self.tenants if t.name not in self.trust.not_read and t.name not in paused
        )

    def read(self) -> dict[str, LiveRead]:
        """Every tenant's live state, or why it could not be read."""
        return self._run(self._read_all, unresolved=True)

    def plan(self, *, rotate: bool = False) -> Plan:
        """What apply would change (`rotate`: re-send every tenant's secret)."""
        return self._run(lambda session: self._plan(session, rotate), unresolved=True)

    def apply(
        self,
        options: ApplyOptions | None = None,
        *,
        saved: Plan | None = None,
        hooks: ApplyHooks | None = None,
        handle_signals: bool = False,
    ) -> ApplyRun:
        """Plan (or take the `saved` plan), check it against the safety settings
        (UnsafePlanError), ask `hooks.confirm`, then apply every change.

        With `handle_signals`, SIGINT and SIGTERM stop new tenants from starting;
        those in flight finish and the report says the run was interrupted.
        """
        options = options or ApplyOptions()
        hooks = hooks or ApplyHooks()
        return self._run(lambda s: self._apply(s, options, saved, hooks, handle_signals))

    def drift(self, *, verify: bool = False, today: date | None = None) -> DriftReport:
        """Config drift and health of every tenant; `verify` also runs
        verify-connection on every configured tenant; `today` decides which
        ignore rules have expired."""
        return self._run(
            lambda session: self._drift(session, verify, today or self.today), unresolved=True
        )

    def check_secrets(self, *, applying: bool = False) -> None:
        """Resolve every secret reference apply may need, for every selected tenant
        but those paused;
        raise SecretError naming each one that cannot be (apply does this before
        it contacts any tenant, so one missing secret changes nothing, and says
        so when `applying`)."""
        paused = self.paused  # never contacted: their secrets are not needed
        problems = unresolvable([t for t in self.tenants if t.name not in paused], self.secrets)
        if problems:
            count = len(problems)
            unchanged = "; nothing was changed" if applying else ""
            raise SecretError(
                f"{count} secret reference(s) cannot be resolved{unchanged}:\n"
                + "\n".join(problems)
            )

    def _run(self, step: Callable[[ApiSession], Awaitable[T]], *, unresolved: bool = False) -> T:
        """Run `step` in one event loop with one session. `unresolved`: the command
        holds no e-mail secret, so free server text is reduced, not only scrubbed."""

        done: list[T] = []

        async def main() -> None:
            scrubber = self.secrets.scrubber
            async with ApiSession(self._client, scrubber, reduce_free_text=unresolved) as session:
                done.append(await step(session))

        # The result stays out of the main task: on the way out, asyncio.run's
        # SIGINT bookkeeping formats the task's repr, result included (all of a
        # plan's tenants, tens of ms at 1,000; bench/NOTES.md).
        asyncio.run(main())
        return done[0]

    async def _plan(self, session: ApiSession, rotate: bool) -> Plan:
        # Each tenant is planned as soon as it is read, while the others are
        # still in flight, rather than all after the last answer.
        planned: dict[str, TenantPlan] = {}

        def plan_one(spec: TenantSpec, state: LiveRead) -> None:
            planned[spec.name] = plan_read(spec, state, rotate=rotate)

        live = await self._read_all(session, plan_one)
        rotated = {t.name for t in self.tenants} if rotate else set()
        plan = make_plan(
            self.tenants,
            live,
            rotate=rotated,
            shard=self.selection.shard,
            config_root=str(self.selection.desired.root),
            trust=self._judged(),
            planned=planned,
            paused={name: pause.describe() for name, pause in self.paused.items()},
        )
        safety = self.selection.desired.settings.safety
        return replace(plan, needs=needs(plan, safety, fleet_size=len(self.tenants)))

    async def _apply(
        self,
        session: ApiSession,
        options: ApplyOptions,
        saved: Plan | None,
        hooks: ApplyHooks,
        handle_signals: bool,
    ) -> ApplyRun:
        self.check_secrets(applying=True)
        if saved is None:
            plan = await self._plan(session, options.rotate_secrets)
        else:
            plan = self._restrict(saved)
        hooks.planned(plan)
        if not plan.has_changes:  # tenants that could not be read are reported so
            return ApplyRun(plan, unchanged_report(plan))
        check_safety(
            plan,
            self.selection.desired.settings.safety,
            fleet_size=len(self.tenants),
            allow_delete=options.allow_delete,
            force=options.force,
        )
        if not hooks.confirm(plan):
            return ApplyRun(plan, None)
        stop = asyncio.Event()
        received: list[int] = []
        with _signals(handle_signals, stop, received, hooks):
            if self.progress is not None:
                self.progress.begin(Phase.APPLY, len(changed_tenants(plan)))
            report = await apply_plan(
                session,
                plan,
                {t.name: t for t in self.tenants},
                self.secrets,
                options,
                concurrency=self.selection.concurrency,
                progress=self.progress,
                stop=stop,
                deadline=self._deadlines.write,
            )
        return ApplyRun(plan, report, received[0] if received else None)

    def _judged(self) -> Trust:
        """`trust`, with the secrets the record says apply must re-send (the
        record wins over the base: it is what apply after merge will compare with)."""
        if self.record is None:
            return self.trust
        moves = {**self.trust.secret_moves, **secret_moves(self.record, self.tenants)}
        return replace(self.trust, secret_moves=moves)

    def _restrict(self, saved: Plan) -> Plan:
        """The saved plan's tenants that this run selected; a tenant paused since
        the plan was made is left alone."""
        names = {t.name for t in self.tenants}
        paused = self.paused
        kept = tuple(
            paused_plan(t.tenant, t.url, t.desired_fingerprint, paused[t.tenant].describe())
            if t.tenant in paused
            else t
            for t in saved.tenants
            if t.tenant in names
        )
        return replace(saved, tenants=kept, shard=self.selection.shard)

    async def _drift(self, session: ApiSession, verify: bool, today: date) -> DriftReport:
        live = await self._read_all(session)
        checks: dict[str, ConnectionCheck] = {}
        if verify:
            configured = [t for t in self.readable if _configured(live[t.name])]
            checks = await self._verify_all(session, configured)
        for name in self._unchecked(self.readable):
            state = live.get(name)
            if isinstance(state, LiveState):
                live[name] = withhold_text(state)
            if name in checks:
                checks[name] = checks[name].withheld()
        settings = self.selection.desired.settings
        paused = {name: pause.describe() for name, pause in self.paused.items()}
        report = build_report(
            self.readable,
            live,
            settings.ignore,
            today,
            checks,
            shard=self.selection.shard,
            paused=[(t.name, t.url, paused[t.name]) for t in self.tenants if t.name in paused],
        )
        if self.record is None:
            return report
        moves = secret_moves(self.record, self.readable)
        return with_unapplied_secrets(report, moves, self.readable)

    def _unchecked(self, tenants: Sequence[TenantSpec]) -> list[str]:
        """The tenants whose server text cannot be checked for their e-mail
        secret, because this run cannot learn it: drift resolves an e-mail
        secret only to scrub it, and only where the value is not the pull
        request's to choose (an `${env:...}` reference, or a `${file:...}`
        reference when no base judges the files; never a command, never a
        reference that differs from the base's)."""
        return [
            spec.name
            for spec in tenants
            if spec.email is not None
            and spec.email.secret is not None
            and not self._learnt_to_scrub(spec.name, spec.email.secret)
        ]

    def _learnt_to_scrub(self, tenant: str, ref: SecretRef) -> bool:
        """Whether `ref` (`tenant`'s e-mail secret) may be, and was, resolved so
        that the scrubber knows its value (`_unchecked` says which may)."""
        judged = self._under_base
        if judged and tenant in self.trust.secret_moves:
            return False
        if not (ref.kind == "env" or (ref.kind == "file" and not judged)):
            return False
        try:
            self.secrets.resolve(ref)
        except SecretError:
            return False
        return True

    async def _read_all(
        self, session: ApiSession, on_read: OnRead | None = None
    ) -> dict[str, LiveRead]:
        """Read every readable tenant; `on_read` hears about each as its read ends.

        The source is loaded in this loop, a few files between two turns of the
        readers, and each tenant is read as soon as its file passed every check
        that is per tenant. The checks across files come at the end: a problem
        there cancels the reads in flight and raises (ConfigError, as
        `Engine.load` would have). Progress starts once the number of tenants is
        known; the steps heard before are replayed then."""
        source = self._source
        queue: asyncio.Queue[TenantSpec | None] = asyncio.Queue()
        live: dict[str, LiveRead] = {}
        progress = _ProgressOnceCounted(self.progress) if self.progress is not None else None

        async def reader() -> None:
            while (spec := await queue.get()) is not None:
                if not source.ok:
                    continue  # the configuration has a problem: the run will fail
                live[spec.name] = await self._read_reported(session, spec, progress, on_read)

        workers = [asyncio.ensure_future(reader()) for _ in range(source.concurrency)]
        queued: set[str] = set()
        try:
            # Once loaded (a second read, or apply's), the source has nothing new.
            given = iter(source) if self._selection is None else iter(())
            for index, spec in enumerate(given, 1):
                if spec is not None:
                    queue.put_nowait(spec)
                    queued.add(spec.name)
                if index % _LOAD_STEP == 0:
                    await asyncio.sleep(0)  # let the workers send what is queued
            readable = self.readable  # loads what is left, and takes the verdict
            if progress is not None:
                progress.begin(Phase.READ, len(readable))
            for spec in readable:
                if spec.name not in queued:  # known only once every file is (a shard)
                    queue.put_nowait(spec)
            for _ in workers:
                queue.put_nowait(None)
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return {t.name: live.get(t.name, _NOT_READ) for t in readable}

    async def _read_reported(
        self,
        session: ApiSession,
        spec: TenantSpec,
        progress: Progress | None,
        on_read: OnRead | None,
    ) -> LiveRead:
        """`_read_one`, then `on_read` and one step of `progress`."""
        state = await self._read_one(session, spec)
        if on_read is not None:
            on_read(spec, state)
        if progress is not None:
            failed = isinstance(state, ReadFailure)
            progress.step(spec.name, "error" if failed else "read", failed)
        return state

    async def _read_one(self, session: ApiSession, spec: TenantSpec) -> LiveRead:
        async def read() -> LiveState:
            client = client_for(session, spec, self.secrets)
            what = f"reading {spec.name}"
            return await within(self._deadlines.read, spec.name, what, client.read_live)

        state = await guarded(spec.name, "reading", read())
        return ReadFailure(state.message) if isinstance(state, Failed) else state

    async def _verify_all(
        self, session: ApiSession, tenants: Sequence[TenantSpec]
    ) -> dict[str, ConnectionCheck]:
        progress = self.progress
        if progress is not None:
            progress.begin(Phase.VERIFY, len(tenants))

        async def verify(spec: TenantSpec) -> ConnectionCheck:
            client = client_for(session, spec, self.secrets)
            what = f"verify-connection on {spec.name}"
            result = await within(self._deadlines.write, spec.name, what, client.verify_connection)
            return ConnectionCheck(result.success, result.message, result.smtp_response_code)

        async def check(spec: TenantSpec) -> ConnectionCheck:
            done = await guarded(spec.name, "verifying", verify(spec))
            outcome = ConnectionCheck(False, done.message) if isinstance(done, Failed) else done
            if progress is not None:
                progress.step(spec.name, "ok" if outcome.ok else "failed", not outcome.ok)
            return outcome

        results = await run_bounded(tenants, check, self.selection.concurrency)
        return {t.name: r for t, r in zip(tenants, results, strict=True) if r is not None}


# What a caller of `_read_all` does with each tenant as soon as it is read.
OnRead = Callable[[TenantSpec, LiveRead], None]

# Tenant files loaded between two turns of the readers while loading (bench/NOTES.md).
_LOAD_STEP = 4
_NOT_READ = ReadFailure("not read")


class _ProgressOnceCounted:
    """A Progress that holds the steps heard before `begin` and replays them
    after it: reads start before the number of tenants to read is known."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._held: list[tuple[str, str, bool]] | None = []

    def begin(self, phase: Phase, total: int) -> None:
        self._progress.begin(phase, total)
        held, self._held = self._held or [], None
        for step in held:
            self._progress.step(*step)

    def step(self, tenant: str, outcome: str, failed: bool) -> None:
        if self._held is not None:
            self._held.append((tenant, outcome, failed))
        else:
            self._progress.step(tenant, outcome, failed)


def _configured(state: LiveRead) -> bool:
    return isinstance(state, LiveState) and state.email is not None


@contextmanager
def _signals(
    enabled: bool, stop: asyncio.Event, received: list[int], hooks: ApplyHooks
) -> Iterator[None]:
    """While active (and `enabled`), SIGINT and SIGTERM set `stop` and are recorded
    in `received`; the first one is announced through `hooks.stopping`."""
    if not enabled:
        yield
        return

    def on_signal(signum: int) -> None:
        if not received:
            hooks.stopping(signum)
        received.append(signum)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
