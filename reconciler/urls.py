"""One parse of a URL for every check that reads it: a tenant URL is read by the
configuration's checks, the trust checks and the client's session, each asking
for its host and port, which `SplitResult` parses out of the netloc again on
every use (bench/NOTES.md, "One parse per tenant URL")."""

from __future__ import annotations

import functools
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit


class SplitUrl(NamedTuple):
    """`urlsplit(url)`, with its `hostname` and `port` read once."""

    parts: SplitResult
    hostname: str | None
    port: int | None  # None also when the port is not one: see `checked_port`
    port_problem: str | None  # the ValueError `SplitResult.port` raised, if any

    def checked_port(self) -> int | None:
        """`port`, or the ValueError `SplitResult.port` raises when it is not one."""
        if self.port_problem is not None:
            raise ValueError(self.port_problem)
        return self.port


# Bounded: a process may meet any number of URLs. A tenant's URL is read by
# the checks of its file, one after the other, and by the session when the
# tenant is read, which at zero latency comes thousands of files later (the
# loading runs ahead): room for a large fleet's URLs (bench/NOTES.md).
@functools.lru_cache(maxsize=1 << 15)
def split_url(url: str) -> SplitUrl:
    """`url` split (`urlsplit`, whose ValueError it raises), host and port read."""
    parts = urlsplit(url)
    try:
        port, problem = parts.port, None
    except ValueError as exc:
        port, problem = None, str(exc)
    return SplitUrl(parts, parts.hostname, port, problem)
