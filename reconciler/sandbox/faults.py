"""Fault injection: latency, error statuses, resets and stalls, on demand.

Settings apply to every tenant (`tenant=None`) or to one tenant, whose
settings then replace the global ones for it. `set` replaces the settings of
its scope as a whole, so each call states the complete fault picture:

    sb.faults.set(latency_ms=50, errors={500: 0.1}, resets=0.05)
    sb.faults.set(stall_s=30, tenant="tenant-002")       # stalls default to p=1
    sb.faults.clear()                                      # everything off

Per request, in this order: a reset (close the socket, no answer) with
probability `resets`; else a lost response (the request IS processed, then the
socket is closed without an answer, as when a gateway drops the reply: the
client cannot tell whether its write happened) with probability `lost`; else a
stall (hold the request `stall_s` seconds, then answer 504) with probability
`stalls`; else an error status drawn from `errors` (Transports API routes) or
`token_errors` (`/oauth/token`). Every request, faulted or not, waits with
`asyncio.sleep` until `latency_ms` after its arrival (not after the sandbox
got round to it), then is handled. Apart from a lost one, a faulted request never
reaches the handlers, so it never changes state. `echo_body` appends the raw
request body to every error title, to prove that a client never shows error
titles verbatim (they would then leak its secrets).

`hostile` (kinds from `sandbox.hostile`) makes a tenant an adversary on every
request, with no draw: `echo-secret` and `payloads` rewrite every string of
every answer (the secrets it echoes include those the tenant was sent since
its faults were last set, which `remember` keeps), and `huge`, `endless`,
`slow`, `deep`, `stacked-bomb` and `retry-after-forever` replace every answer
with such an answer (`huge-writes` only the success answers of PUT and
DELETE, once they are carried out):

    sb.faults.set(hostile=("echo-secret", "payloads"), tenant="tenant-001")
    sb.faults.set(hostile=("endless",), tenant="tenant-002")

Draws come from one `random.Random(seed)`, under a lock, so a run with the
same seed and the same request order sees the same faults.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import field

from reconciler.sandbox.hostile import BODY_KINDS, KINDS
from reconciler.values import valueclass


@valueclass
class FaultSpec:
    """The fault settings of one scope (global or one tenant)."""

    latency_ms: float = 0.0
    errors: Mapping[int, float] = field(default_factory=dict)
    resets: float = 0.0
    stall_s: float = 0.0
    stalls: float = 0.0
    echo_body: bool = False
    token_errors: Mapping[int, float] = field(default_factory=dict)
    lost: float = 0.0
    hostile: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.hostile if kind not in KINDS]
        if unknown:
            raise ValueError(f"hostile: unknown kind(s) {unknown}; known: {', '.join(KINDS)}")
        if len([kind for kind in self.hostile if kind in BODY_KINDS]) > 1:
            raise ValueError(f"hostile: at most one of {', '.join(BODY_KINDS)}")
        for name, table in (("errors", self.errors), ("token_errors", self.token_errors)):
            if any(not 400 <= status <= 599 for status in table):
                raise ValueError(f"{name}: fault statuses must be 4xx or 5xx")
            if sum(table.values()) + self.resets + self.stalls + self.lost > 1.0 + 1e-9:
                raise ValueError(
                    f"{name}, resets, lost and stalls: probabilities add up to more than 1"
                )
        if self.latency_ms < 0 or self.stall_s < 0:
            raise ValueError("latency_ms and stall_s must not be negative")


@valueclass
class FaultDecision:
    """What to do to one request."""

    latency_s: float = 0.0
    reset: bool = False
    lost: bool = False
    stall_s: float = 0.0
    status: int | None = None
    echo_body: bool = False
    hostile: tuple[str, ...] = ()

    @property
    def is_async(self) -> bool:
        """True when the request must wait on the event loop."""
        return self.latency_s > 0 or self.stall_s > 0


NO_FAULT = FaultDecision()


class Faults:
    """The fault settings of a sandbox; safe to change from any thread at any time."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._global: FaultSpec | None = None
        self._tenants: dict[str, FaultSpec] = {}
        self._remembered: dict[str, list[str]] = {}  # hostile tenants: secrets seen

    def set(
        self,
        *,
        latency_ms: float = 0.0,
        errors: Mapping[int, float] | None = None,
        resets: float = 0.0,
        stall_s: float = 0.0,
        stalls: float | None = None,
        echo_body: bool = False,
        token_errors: Mapping[int, float] | None = None,
        lost: float = 0.0,
        hostile: tuple[str, ...] = (),
        tenant: str | None = None,
    ) -> FaultSpec:
        """Replace the settings of one scope (all tenants when `tenant` is None)."""
        spec = FaultSpec(
            latency_ms=latency_ms,
            errors=dict(errors or {}),
            resets=resets,
            stall_s=stall_s,
            stalls=(1.0 if stall_s > 0 else 0.0) if stalls is None else stalls,
            echo_body=echo_body,
            token_errors=dict(token_errors or {}),
            lost=lost,
            hostile=tuple(hostile),
        )
        with self._lock:
            if tenant is None:
                self._global = spec
                self._remembered.clear()
            else:
                self._tenants[tenant] = spec
                self._remembered.pop(tenant, None)
        return spec

    def remember(self, tenant: str, secrets: list[str]) -> list[str]:
        """Note `secrets` as sent to `tenant`; every secret it was sent so far."""
        with self._lock:
            seen = self._remembered.setdefault(tenant, [])
            seen.extend(s for s in secrets if s not in seen)
            return list(seen)

    def clear(self, tenant: str | None = None) -> None:
        """Remove one tenant's settings, or (no tenant) every setting."""
        with self._lock:
            if tenant is None:
                self._global = None
                self._tenants.clear()
                self._remembered.clear()
            else:
                self._tenants.pop(tenant, None)
                self._remembered.pop(tenant, None)

    def spec(self, tenant: str) -> FaultSpec | None:
        """The settings in force for a tenant, if any."""
        with self._lock:
            return self._tenants.get(tenant, self._global)

    def seed(self, seed: int | None) -> None:
        """Restart the random sequence (for reproducible runs)."""
        with self._lock:
            self._random.seed(seed)

    def decide(self, tenant: str, *, token_route: bool) -> FaultDecision:
        """Draw the faults for one request to `tenant`."""
        # Fast path: benchmarks run with no faults and must not pay for a lock.
        if self._global is None and not self._tenants:
            return NO_FAULT
        with self._lock:
            spec = self._tenants.get(tenant, self._global)
            if spec is None:
                return NO_FAULT
            draw = self._random.random()
        latency = spec.latency_ms / 1000.0
        hostile = spec.hostile
        if draw < spec.resets:
            return FaultDecision(latency_s=latency, reset=True)
        draw -= spec.resets
        if draw < spec.lost and not token_route:
            return FaultDecision(latency_s=latency, lost=True)
        draw -= spec.lost
        echo = spec.echo_body
        if draw < spec.stalls:
            return FaultDecision(
                latency_s=latency, stall_s=spec.stall_s, echo_body=echo, hostile=hostile
            )
        draw -= spec.stalls
        table = spec.token_errors if token_route else spec.errors
        for status, probability in sorted(table.items()):
            if draw < probability:
                return FaultDecision(
                    latency_s=latency, status=status, echo_body=echo, hostile=hostile
                )
            draw -= probability
        return FaultDecision(latency_s=latency, echo_body=echo, hostile=hostile)
