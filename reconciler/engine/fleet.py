"""Work across a fleet: each tenant's credentials, and a bounded set of workers
so that thousands of tenants are in flight C at a time in one event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Protocol, TypeVar

from reconciler.client import (
    ApiKeyCredentials,
    ApiSession,
    Credentials,
    OAuthCredentials,
    TenantClient,
)
from reconciler.client.deadline import Deadline
from reconciler.errors import ReconcilerError, SecretError
from reconciler.model import ApiKeyAuth, Auth, Deadlines, TenantSpec
from reconciler.secrets import SecretResolver, parse_reference
from reconciler.values import valueclass

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("reconciler.engine")


@valueclass
class Failed:
    """Why one tenant's step failed: the message of the project's error, or of
    a bug (whose traceback `--debug` logs)."""

    message: str


async def guarded(tenant: str, doing: str, work: Awaitable[T]) -> T | Failed:
    """`work`'s result, or Failed: one tenant's failure, of any kind, is that
    tenant's report entry and never stops the others or loses the report."""
    try:
        return await work
    except ReconcilerError as exc:
        return Failed(str(exc))
    except Exception as exc:  # a bug, or a hostile answer: this tenant's failure only
        log.debug("tenant %s: internal error while %s", tenant, doing, exc_info=True)
        return Failed(internal_error(exc))


def internal_error(exc: BaseException) -> str:
    """The message for an unexpected exception (a bug) while handling a tenant."""
    return f"internal error ({type(exc).__name__}); re-run with --debug for details"


@valueclass
class StepDeadlines:
    """The deadline of each kind of tenant step, with the setting it comes from."""

    read: Deadline
    write: Deadline


def step_deadlines(deadlines: Deadlines) -> StepDeadlines:
    """The root file's `settings.deadline` as the client's deadlines."""
    return StepDeadlines(
        read=Deadline(deadlines.read_s, "settings.deadline.read"),
        write=Deadline(deadlines.write_s, "settings.deadline.write"),
    )


def credentials_for(auth: Auth, resolver: SecretResolver) -> Credentials:
    """Resolve the API credentials of a tenant (the only secrets `plan` needs);
    an unresolvable reference is reported at the file and line of its `auth`."""
    try:
        if isinstance(auth, ApiKeyAuth):
            return ApiKeyCredentials(key=resolver.resolve(auth.key))
        client_id = parse_reference(auth.client_id)
        return OAuthCredentials(
            client_id=resolver.resolve(client_id).reveal() if client_id else auth.client_id,
            client_secret=resolver.resolve(auth.client_secret),
            scope=auth.scope,
        )
    except SecretError as exc:
        if auth.source is None:
            raise
        raise SecretError(f"{auth.source}: {exc}") from None


def client_for(session: ApiSession, spec: TenantSpec, resolver: SecretResolver) -> TenantClient:
    """The API client of one tenant, with its credentials resolved now."""
    return session.tenant(spec.name, spec.url, credentials_for(spec.auth, resolver))


def unresolvable(tenants: Sequence[TenantSpec], resolver: SecretResolver) -> list[str]:
    """Every secret reference of `tenants` (API credentials and e-mail secrets)
    that cannot be resolved, each as `file:line:col: why` (no value is kept)."""
    problems: dict[str, None] = {}  # in order, once each (defaults are shared)
    for spec in tenants:
        try:
            credentials_for(spec.auth, resolver)
        except SecretError as exc:
            problems[str(exc)] = None
        email = spec.email
        if email is not None and email.secret is not None:
            try:
                resolver.resolve(email.secret)
            except SecretError as exc:
                where = email.secret_source or spec.source
                problems[f"{where}: {exc}"] = None
    return list(problems)


async def run_bounded(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    concurrency: int,
    stop: asyncio.Event | None = None,
) -> list[R | None]:
    """Run `work` over `items` with at most `concurrency` in flight; results keep
    the order of `items`. When `stop` is set, no new item starts (None result)."""
    results: list[R | None] = [None] * len(items)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(items) and not (stop is not None and stop.is_set()):
            index = next_index
            next_index += 1
            results[index] = await work(items[index])

    workers = max(1, min(concurrency, len(items)))
    await asyncio.gather(*(worker() for _ in range(workers)))
    return results


class Phase(str, Enum):
    """The stages of a run that report progress tenant by tenant."""

    READ = "read"
    APPLY = "apply"
    VERIFY = "verify"


class Progress(Protocol):
    """Where the engine reports progress (the CLI draws it on stderr)."""

    def begin(self, phase: Phase, total: int) -> None:
        """A phase starts with `total` tenants to go through."""

    def step(self, tenant: str, outcome: str, failed: bool) -> None:
        """One tenant is through the phase: `outcome` says how (read, applied, ...)."""
