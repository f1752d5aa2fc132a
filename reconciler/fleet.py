"""Running work across a fleet: tenant selection, sharding, credentials, and a
bounded pool of workers so that thousands of tenants are in flight C at a time.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from reconciler.client import ApiKeyCredentials, ApiSession, Credentials, OAuthCredentials
from reconciler.errors import ReconcilerError, SecretError
from reconciler.live import normalize
from reconciler.model import ApiKeyAuth, Auth, LiveState, TenantSpec
from reconciler.secrets import SecretResolver, parse_reference

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[str, str], None]  # (tenant name, outcome word)


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1-based) as a pair; raises ReconcilerError when malformed."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ReconcilerError(f"--shard must look like I/N (e.g. 2/4), got {text!r}") from None
    if count < 1 or not 1 <= index <= count:
        raise ReconcilerError(f"--shard {text}: I must be between 1 and N, and N at least 1")
    return index, count


def shard_of(name: str, count: int) -> int:
    """The 1-based shard a tenant belongs to: a hash of its name, so a tenant stays
    in its shard whatever other tenants are added or removed."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_tenants(
    tenants: Sequence[TenantSpec],
    patterns: Sequence[str] = (),
    shard: tuple[int, int] | None = None,
) -> tuple[TenantSpec, ...]:
    """The tenants named by `patterns` (names or globs; all when empty) in `shard`."""
    chosen = list(tenants)
    if patterns:
        unmatched = [
            p for p in patterns if not any(fnmatch.fnmatchcase(t.name, p) for t in tenants)
        ]
        if unmatched:
            raise ReconcilerError(
                f"--tenant {', '.join(unmatched)}: no such tenant in the configuration"
            )
        chosen = [t for t in chosen if any(fnmatch.fnmatchcase(t.name, p) for p in patterns)]
    if shard is not None:
        index, count = shard
        chosen = [t for t in chosen if shard_of(t.name, count) == index]
    return tuple(chosen)


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


async def read_raw(
    session: ApiSession, spec: TenantSpec, resolver: SecretResolver
) -> dict[str, Any] | str:
    """One tenant's GET email-config body, or why it could not be read."""
    try:
        client = session.tenant(spec.name, spec.url, credentials_for(spec.auth, resolver))
        return await client.get_email_config()
    except (ReconcilerError, ValueError) as exc:
        return str(exc)


async def read_live(
    session: ApiSession,
    tenants: Sequence[TenantSpec],
    resolver: SecretResolver,
    *,
    concurrency: int,
    progress: Progress | None = None,
) -> dict[str, LiveState | str]:
    """GET every tenant's live config; a tenant that cannot be read maps to the
    reason (one failure never stops the others)."""

    async def read(spec: TenantSpec) -> LiveState | str:
        raw = await read_raw(session, spec, resolver)
        state = raw if isinstance(raw, str) else normalize(raw)
        if progress is not None:
            progress(spec.name, "error" if isinstance(state, str) else "read")
        return state

    states = await run_bounded(tenants, read, concurrency)
    return {spec.name: state or "not read" for spec, state in zip(tenants, states, strict=True)}


async def verify_all(
    session: ApiSession,
    tenants: Sequence[TenantSpec],
    resolver: SecretResolver,
    *,
    concurrency: int,
) -> dict[str, tuple[bool, str]]:
    """verify-connection on every tenant: (success, message) per tenant name."""

    async def check(spec: TenantSpec) -> tuple[bool, str]:
        try:
            client = session.tenant(spec.name, spec.url, credentials_for(spec.auth, resolver))
            result = await client.verify_connection()
        except (ReconcilerError, ValueError) as exc:
            return False, str(exc)
        return result.success, result.message

    results = await run_bounded(tenants, check, concurrency)
    return {t.name: r for t, r in zip(tenants, results, strict=True) if r is not None}
