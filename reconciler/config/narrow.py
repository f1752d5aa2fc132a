"""Settings under `--base`: those of the trusted base apply, and a pull request
may only make them stricter.

Lists (`allowedHosts`, `policy.smtpHosts`, `policy.senderDomains`) may only drop
entries of the base's list or add literal names the base's list already
matches; any other entry is a configuration error at its line and column (and
is dropped, so that the settings never widen even where the error is not
shown). Numbers (safety thresholds, `concurrency`, `timeout`, the deadlines)
take the lower of the two; drift ignore rules are kept only when the base has the same rule.
"""

from __future__ import annotations

from dataclasses import replace

from reconciler.config.hosts import narrow_hosts, within
from reconciler.config.policy import narrow_policy
from reconciler.config.quote import quoted
from reconciler.config.source import Document
from reconciler.errors import ConfigIssue
from reconciler.model import DEFAULT_ALLOWED_HOSTS, Safety, Settings

# (path in the root file, what the list holds), in the order of `widening_issues`'s bases
_LISTS = (
    (("settings", "allowedHosts"), "tenant hosts"),
    (("settings", "policy", "smtpHosts"), "SMTP hosts"),
    (("settings", "policy", "senderDomains"), "sender domains"),
)


def narrow_settings(wanted: Settings, trusted: Settings) -> Settings:
    """The settings that apply to a pull request's configuration: `trusted` (the
    base's) for everything that guards a secret or a tenant, narrowed where
    `wanted` (the pull request's) is stricter."""
    if wanted.allowed_hosts == DEFAULT_ALLOWED_HOSTS:  # unset, or as wide as the default
        hosts = trusted.allowed_hosts
    else:
        hosts = narrow_hosts(wanted.allowed_hosts, trusted.allowed_hosts)
    return replace(
        wanted,
        concurrency=min(wanted.concurrency, trusted.concurrency),
        timeout_s=min(wanted.timeout_s, trusted.timeout_s),
        allowed_hosts=hosts,
        safety=_stricter(wanted.safety, trusted.safety),
        ignore=tuple(rule for rule in wanted.ignore if rule in trusted.ignore),
        policy=narrow_policy(wanted.policy, trusted.policy),
        deadlines=wanted.deadlines.tightened(trusted.deadlines),
    )


def widening_issues(root: Document, trusted: Settings) -> list[ConfigIssue]:
    """An issue at every list entry of the pull request's root file that would
    allow more than the base's list of the same setting."""
    bases = (
        trusted.allowed_hosts,
        trusted.policy.smtp_hosts,
        trusted.policy.sender_domains,
    )
    found = []
    for (path, what), base in zip(_LISTS, bases, strict=True):
        entries = root.get(*path)
        if base is None or not isinstance(entries, list):
            continue  # the base sets no limit here: the pull request may add one
        for index, entry in enumerate(entries):
            if isinstance(entry, str) and not within(entry, base):
                found.append(root.issue((*path, index), _widening(entry, what, base)))
    return found


def _widening(entry: str, what: str, base: tuple[str, ...]) -> str:
    return (
        f"{quoted(entry)} would allow {what} that the base does not ({', '.join(base)}): "
        "under --base a pull request may only remove entries, or add names the base's "
        "list already matches; widen the list in its own reviewed change"
    )


def _stricter(wanted: Safety, trusted: Safety) -> Safety:
    def low(a: float | None, b: float | None) -> float | None:
        return b if a is None else a if b is None else min(a, b)

    def low_int(a: int | None, b: int | None) -> int | None:
        return b if a is None else a if b is None else min(a, b)

    return Safety(
        max_changes=low_int(wanted.max_changes, trusted.max_changes),
        max_changes_percent=low(wanted.max_changes_percent, trusted.max_changes_percent),
        max_deletes=low_int(wanted.max_deletes, trusted.max_deletes),
        max_deletes_percent=low(wanted.max_deletes_percent, trusted.max_deletes_percent),
    )
