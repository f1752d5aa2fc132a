"""What the sandbox saw: a request log, counters, and requests in flight.

A request is "in flight" from the moment its headers and body are parsed to
the moment its answer (or reset) is produced. Requests answered straight away
on the event loop never overlap, so a peak above 1 means the server really
held several requests at once: injected latency, stalls, PUT validations.

Only the event loop thread records; tests read snapshots from their thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from reconciler.values import valueclass


@valueclass
class LogEntry:
    """One request: who, what, the status answered (0 = connection reset), when."""

    tenant: str
    method: str
    path: str
    status: int
    time: float
    duration_ms: float


@valueclass
class TenantCounters:
    """The counters of one tenant."""

    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    peak_in_flight: int = 0
    in_flight: int = 0


@valueclass
class Stats:
    """A snapshot of the counters since start (or the last reset)."""

    requests: int
    by_status: dict[int, int]
    responses_429: int
    in_flight: int
    peak_in_flight: int
    tenants: dict[str, TenantCounters]

    def peak_in_flight_of(self, tenant: str) -> int:
        counters = self.tenants.get(tenant)
        return counters.peak_in_flight if counters else 0


@dataclass(slots=True)
class _Tenant:
    requests: int = 0
    in_flight: int = 0
    peak: int = 0
    by_status: Counter[int] = field(default_factory=Counter)


@dataclass(slots=True)
class Call:
    """A request being recorded (returned by `begin`, passed to `end`)."""

    tenant: str
    method: str
    path: str
    started: float


class Recorder:
    """Collects the log and the counters."""

    def __init__(self, log_limit: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._log: deque[LogEntry] = deque(maxlen=log_limit)
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._requests = 0
        self._by_status: Counter[int] = Counter()
        self._in_flight = 0
        self._peak = 0
        self._tenants: dict[str, _Tenant] = {}

    def begin(self, tenant: str, method: str, path: str) -> Call:
        """A request has arrived."""
        with self._lock:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            if tenant:
                counters = self._tenants.get(tenant)
                if counters is None:
                    counters = self._tenants[tenant] = _Tenant()
                counters.in_flight += 1
                counters.peak = max(counters.peak, counters.in_flight)
        return Call(tenant, method, path, time.time())

    def end(self, call: Call, status: int) -> None:
        """The request was answered with `status` (0: the connection was reset)."""
        finished = time.time()
        entry = LogEntry(
            call.tenant,
            call.method,
            call.path,
            status,
            call.started,
            (finished - call.started) * 1e3,
        )
        with self._lock:
            self._in_flight -= 1
            self._requests += 1
            self._by_status[status] += 1
            self._log.append(entry)
            counters = self._tenants.get(call.tenant) if call.tenant else None
            if counters is not None:
                counters.in_flight -= 1
                counters.requests += 1
                counters.by_status[status] += 1

    def snapshot(self) -> Stats:
        with self._lock:
            return Stats(
                requests=self._requests,
                by_status=dict(self._by_status),
                responses_429=self._by_status.get(429, 0),
                in_flight=self._in_flight,
                peak_in_flight=self._peak,
                tenants={
                    name: TenantCounters(c.requests, dict(c.by_status), c.peak, c.in_flight)
                    for name, c in self._tenants.items()
                },
            )

    def durations(self) -> dict[str, dict[str, float]]:
        """Server-side time per route (`METHOD path`) over the logged requests:
        count, mean, p50, p95 and max in milliseconds (latency and SMTP included)."""
        by_route: dict[str, list[float]] = {}
        for entry in self.log():
            by_route.setdefault(f"{entry.method} {entry.path}", []).append(entry.duration_ms)
        return {route: _summary(values) for route, values in sorted(by_route.items())}

    def log(self) -> list[LogEntry]:
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Clear the log and the counters (requests in flight stay counted)."""
        with self._lock:
            in_flight = self._in_flight
            tenants_in_flight = {n: c.in_flight for n, c in self._tenants.items() if c.in_flight}
            self._log.clear()
            self._reset_counters()
            self._in_flight = in_flight
            for name, count in tenants_in_flight.items():
                self._tenants[name] = _Tenant(in_flight=count)


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "mean_ms": round(sum(ordered) / len(ordered), 3),
        "p50_ms": round(ordered[len(ordered) // 2], 3),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3),
        "max_ms": round(ordered[-1], 3),
    }
