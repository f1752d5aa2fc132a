"""`settings.policy`: what the e-mail settings of every tenant may say.

A tenant's SMTP password goes to `serverAddress`, so a pull request that points
it elsewhere, or drops encryption, decides where a secret travels. The policy
(taken from the trusted base under `--base`) bounds that: SMTP host globs,
sender domain globs, and `requireTls`. Violations are configuration errors at
the tenant file's line and column; without `requireTls`, unencrypted SMTP with
a password is only a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.config.hosts import host_allowed, narrow_hosts
from reconciler.config.source import Document
from reconciler.errors import ConfigIssue
from reconciler.model import Policy, Provider, TenantSpec


def build_policy(settings: Mapping[str, Any]) -> Policy:
    """The Policy of a validated `settings` mapping."""
    policy = settings.get("policy") or {}
    hosts, domains = policy.get("smtpHosts"), policy.get("senderDomains")
    return Policy(
        smtp_hosts=tuple(hosts) if hosts else None,
        sender_domains=tuple(domains) if domains else None,
        require_tls=bool(policy.get("requireTls", False)),
    )


def narrow_policy(wanted: Policy, trusted: Policy) -> Policy:
    """`wanted` (a pull request's policy) kept only where it is at least as strict
    as `trusted` (the base's): lists are intersected, requireTls is or-ed."""
    return Policy(
        smtp_hosts=_narrow(wanted.smtp_hosts, trusted.smtp_hosts),
        sender_domains=_narrow(wanted.sender_domains, trusted.sender_domains),
        require_tls=wanted.require_tls or trusted.require_tls,
    )


def _narrow(
    wanted: tuple[str, ...] | None, trusted: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    if trusted is None:
        return wanted
    if wanted is None:
        return trusted
    return narrow_hosts(wanted, trusted)


def policy_issues(doc: Document, tenant: TenantSpec, policy: Policy) -> list[ConfigIssue]:
    """Where `tenant` (built from `doc`, merged with the defaults) breaks `policy`."""
    if tenant.email is None:
        return []
    values = tenant.email.as_dict()
    found = [
        _outside("serverAddress", values.get("serverAddress"), policy.smtp_hosts, "smtpHosts"),
        _outside(
            "emailAddress",
            _domain(values.get("emailAddress")),
            policy.sender_domains,
            "senderDomains",
        ),
    ]
    if policy.require_tls and sends_password_in_clear(tenant):
        message = (
            "securityType none would send the SMTP password unencrypted, "
            "and settings.policy.requireTls is set: use StartTLS or SSL/TLS"
        )
        found.append(("securityType", message))
    return [_issue(doc, *item) for item in found if item is not None]


def _domain(address: object) -> str | None:
    return address.rpartition("@")[2] if isinstance(address, str) else None


def _outside(
    key: str, value: object, allowed: tuple[str, ...] | None, setting: str
) -> tuple[str, str] | None:
    """(key, message) when `value` is not matched by the policy's `allowed` globs."""
    if allowed is None or not isinstance(value, str) or host_allowed(value, allowed):
        return None
    what = "SMTP host" if key == "serverAddress" else "sender domain"
    return key, f"{what} {value} is not allowed by settings.policy.{setting} ({', '.join(allowed)})"


def _issue(doc: Document, key: str, message: str) -> ConfigIssue:
    if doc.get("email", key) is None:
        message += " (the value comes from the root file's defaults)"
    return doc.issue(("email", key), message)


def sends_password_in_clear(tenant: TenantSpec) -> bool:
    """A BasicAuth tenant with a password and `securityType: none`."""
    email = tenant.email
    return (
        email is not None
        and email.provider is Provider.BASIC_AUTH
        and email.secret is not None
        and email.as_dict().get("securityType") == "none"
    )


def tls_warnings(tenants: Sequence[TenantSpec]) -> list[str]:
    """A warning per tenant that would send its SMTP password unencrypted."""
    return [
        f"{t.source}: warning: tenant {t.name} sends its SMTP password unencrypted "
        "(securityType: none); set settings.policy.requireTls to refuse this"
        for t in tenants
        if sends_password_in_clear(t)
    ]
