"""Allowed tenant hosts: `settings.allowedHosts` globs, and how a pull request's
list is narrowed by the trusted base's.

A glob matches a host name case-insensitively (`*.qlikcloud.com`); an IPv6
address is written in brackets (`[::1]`) and matched as written, since brackets
are a character class to `fnmatch`. Loopback hosts get no exemption: a tenant at
127.0.0.1 is contacted only when the list names it. Under `--base`, a pull
request's list may only drop entries of the base's, or add literal names the
base's list already matches (`within`).
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


def is_literal(pattern: str) -> bool:
    """True when `pattern` names one host (or domain): no glob character, or an
    IPv6 address in brackets."""
    if pattern.startswith("[") and pattern.endswith("]"):
        return True
    return not any(c in pattern for c in "*?[")


def within(entry: str, trusted: Sequence[str]) -> bool:
    """True when a pull request's list entry `entry` allows nothing that
    `trusted` (the base's list) does not: it is one of the trusted entries (as
    written, case aside), or a literal name that a trusted entry matches. A
    glob is never compared by matching its text, which would let
    `mail*.corp.example` pass as a name that `mail?.corp.example` matches."""
    lowered = entry.lower()
    if any(lowered == pattern.lower() for pattern in trusted):
        return True
    return is_literal(entry) and host_allowed(entry, trusted)


def narrow_hosts(wanted: Sequence[str], trusted: Sequence[str]) -> tuple[str, ...]:
    """The entries of `wanted` that stay `within` `trusted`: the others are
    dropped (and reported as errors by `config.narrow`)."""
    return tuple(entry for entry in wanted if within(entry, trusted))
