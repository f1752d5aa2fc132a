"""Allowed tenant hosts: `settings.allowedHosts` globs, and how a pull request's
list is narrowed by the trusted base's.

A glob matches a host name case-insensitively (`*.qlikcloud.com`); an IPv6
address is written in brackets (`[::1]`) and matched as written, since brackets
are a character class to `fnmatch`. Loopback hosts get no exemption: a tenant at
127.0.0.1 is contacted only when the list names it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence


def _matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower()
    if pattern.startswith("[") and pattern.endswith("]"):
        return host == pattern[1:-1]
    return fnmatch.fnmatchcase(host, pattern)


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """True when `host` (as `urlsplit(...).hostname` gives it) matches a pattern."""
    host = host.lower().strip("[]")
    return any(_matches(host, pattern) for pattern in patterns)


def narrow_hosts(wanted: Sequence[str], trusted: Sequence[str]) -> tuple[str, ...]:
    """The globs of `wanted` that `trusted` allows: a glob is kept only when every
    host it can match is matched by a trusted glob, which is checked by matching
    the glob's own text (so `*` or `*.com` survive only a trusted `*`)."""
    return tuple(glob for glob in wanted if host_allowed(glob, trusted))
