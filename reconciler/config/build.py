"""From validated documents to the typed desired state: merge the root file's
defaults into each tenant, check what only the merged result can tell (required
settings, provider membership, auth, uniqueness), and build the model.

Builders return None instead of a value whenever an issue was found, so that one
run can report every problem and still never build a half-valid model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import field
from datetime import date
from typing import Any

from reconciler.config.checks import normalize_url, url_identity, url_problem
from reconciler.config.policy import build_policy
from reconciler.config.quote import quoted, shown
from reconciler.config.source import Document
from reconciler.errors import ConfigIssue
from reconciler.model import (
    DEFAULT_ALLOWED_HOSTS,
    PROVIDER_FIELDS,
    ROTATION_FIELD,
    SECRET_FIELD,
    ApiKeyAuth,
    Auth,
    Deadlines,
    DesiredEmail,
    IgnoreRule,
    OAuthAuth,
    Pause,
    Provider,
    Safety,
    Settings,
    SourcePos,
    TenantSpec,
)
from reconciler.secrets import parse_reference
from reconciler.values import valueclass

# The settings of each provider a tenant may write (its `provider` key included).
PROVIDER_KEYS: Mapping[Provider, frozenset[str]] = {
    provider: frozenset(
        {"provider", *PROVIDER_FIELDS[provider], SECRET_FIELD[provider], ROTATION_FIELD[provider]}
    )
    for provider in Provider
}
_PROVIDER_NAMES = frozenset(provider.value for provider in Provider)
ABSENT = "absent"
REQUIRED: Mapping[Provider, tuple[str, ...]] = {
    Provider.BASIC_AUTH: (
        "serverAddress",
        "serverPort",
        "securityType",
        "username",
        "password",
        "emailAddress",
    ),
    Provider.MICROSOFT365: ("clientId", "clientSecret", "providerTenantId", "emailAddress"),
}


@valueclass
class Defaults:
    """The root file's `defaults`, and whether they are sound enough to merge with."""

    root_file: str
    email: Mapping[str, Any] = field(default_factory=dict)
    auth: Mapping[str, Any] | None = None
    usable: bool = True
    auth_source: SourcePos | None = None
    # Where each secret of defaults.email is written (by field name).
    secret_sources: Mapping[str, SourcePos] = field(default_factory=dict)


def build_tenant(
    doc: Document, defaults: Defaults, issues: list[ConfigIssue], *, sound: bool
) -> TenantSpec | None:
    """The tenant `doc` describes, merged over `defaults`.

    Problems only the merge reveals are appended to `issues`. The result is None
    when the document is not `sound` (it had issues of its own) or the merge failed.
    """
    before = len(issues)
    email = _merged_email(doc, defaults, issues)
    auth = _auth(doc, defaults, issues)
    # Unusable defaults skipped the required-field checks: nothing to build on.
    if not sound or not defaults.usable or len(issues) > before or auth is None:
        return None
    line, column = doc.position(("name",), key=True)
    return TenantSpec(
        name=doc.data["name"],
        url=normalize_url(doc.data["url"]),
        auth=auth,
        email=None if email == ABSENT else _desired_email(email, _secret_source(doc, defaults)),
        source=SourcePos(doc.file, line, column),
        paused=_pause(doc),
    )


def _pause(doc: Document) -> Pause | None:
    """The tenant's `paused:` (a validated mapping), or None."""
    spec = doc.get("paused")
    if not isinstance(spec, dict):
        return None
    until = spec.get("until")
    return Pause(
        reason=" ".join(str(spec["reason"]).split()),
        until=None if until is None else date.fromisoformat(until),
        source=SourcePos(doc.file, *doc.position(("paused",), key=True)),
    )


def _merged_email(doc: Document, defaults: Defaults, issues: list[ConfigIssue]) -> Any:
    """The tenant's e-mail settings over the defaults of its provider, or ABSENT."""
    own = doc.get("email")
    if own == ABSENT or not isinstance(own, dict):
        return own
    provider_name = own.get("provider", defaults.email.get("provider", Provider.BASIC_AUTH.value))
    if not isinstance(provider_name, str) or provider_name not in _PROVIDER_NAMES:
        return None  # the schema has reported it
    provider = Provider(provider_name)
    issues.extend(_foreign_fields(doc, own, provider, defaults))
    values = {k: v for k, v in defaults.email.items() if k in PROVIDER_KEYS[provider]}
    values.update(own, provider=provider.value)
    if defaults.usable:
        issues.extend(_missing_fields(doc, values, provider, defaults))
    return values


def _foreign_fields(
    doc: Document, own: Mapping[str, Any], provider: Provider, defaults: Defaults
) -> Iterable[ConfigIssue]:
    origin = "" if "provider" in own else _provider_origin(defaults)
    for key in own:
        if key in PROVIDER_KEYS[provider]:
            continue
        owner = next((p for p in Provider if key in PROVIDER_KEYS[p]), None)
        if owner is None:
            continue  # an unknown key: the schema has reported it
        message = (
            f"{key} is a {owner.value} setting, but this tenant's provider is {provider.value}"
            f"{origin}: remove {key}, or set provider: {owner.value}"
        )
        yield doc.issue(("email", key), message, key=True)


def _provider_origin(defaults: Defaults) -> str:
    if "provider" in defaults.email:
        return f" (from defaults.email.provider in {defaults.root_file})"
    return " (the default provider)"


def _missing_fields(
    doc: Document, values: Mapping[str, Any], provider: Provider, defaults: Defaults
) -> Iterable[ConfigIssue]:
    missing = [key for key in REQUIRED[provider] if key not in values]
    if missing:
        listed = ", ".join(missing)
        them = "them" if len(missing) > 1 else "it"
        message = (
            f"email is missing {listed}, required for provider {provider.value}: "
            f"set {them} here, or under defaults.email in {defaults.root_file}"
        )
        yield doc.issue(("email",), message, key=True)


def _desired_email(values: Mapping[str, Any], sources: Mapping[str, SourcePos]) -> DesiredEmail:
    provider = Provider(values["provider"])
    fields = dict(values)
    if "serverPort" in fields:
        fields["serverPort"] = int(fields["serverPort"])  # YAML may say 587.0
    name = SECRET_FIELD[provider]
    secret = parse_reference(values[name])
    rotation = values.get(ROTATION_FIELD[provider])
    marker = None if rotation is None else str(rotation)
    return DesiredEmail.of(provider, fields, secret, sources.get(name), marker)


def _secret_source(doc: Document, defaults: Defaults) -> dict[str, SourcePos]:
    """Where each secret the tenant ends up with is written: in its own file, or
    under defaults.email in the root file."""
    found = dict(defaults.secret_sources)
    own = doc.get("email")
    for name in SECRET_FIELD.values():
        if isinstance(own, dict) and name in own:
            found[name] = SourcePos(doc.file, *doc.position(("email", name)))
    return found


def _auth(doc: Document, defaults: Defaults, issues: list[ConfigIssue]) -> Auth | None:
    """The tenant's own auth (it replaces the default as a whole), else the default."""
    spec = doc.data.get("auth") if isinstance(doc.data, dict) else None
    source: SourcePos | None = SourcePos(doc.file, *doc.position(auth_secret_path(spec)))
    if spec is None:
        spec, source = defaults.auth, defaults.auth_source
        if spec is None and defaults.usable:
            name = doc.get("name")
            who = f"tenant {quoted(name)}" if isinstance(name, str) else "this tenant"
            message = f"{who} has no auth: add auth here, or defaults.auth in {defaults.root_file}"
            issues.append(doc.issue(("name",), message, key=True))
    return build_auth(spec, source)


def auth_secret_path(spec: Any, prefix: tuple[str, ...] = ("auth",)) -> tuple[str, ...]:
    """Where, under `prefix`, the secret of an `auth` mapping is written (its API
    key, or its OAuth client secret): errors about it point there."""
    if isinstance(spec, dict) and "apiKey" in spec:
        return (*prefix, "apiKey")
    if isinstance(spec, dict) and isinstance(spec.get("oauth"), dict):
        return (*prefix, "oauth", "clientSecret")
    return prefix


def build_auth(spec: Any, source: SourcePos | None = None) -> Auth | None:
    """The Auth an `auth` mapping describes, or None when it is not sound."""
    if not isinstance(spec, dict) or len(spec) != 1:
        return None
    if "apiKey" in spec:
        key = parse_reference(str(spec["apiKey"]))
        return None if key is None else ApiKeyAuth(key=key, source=source)
    oauth = spec.get("oauth")
    if not isinstance(oauth, dict) or not isinstance(oauth.get("clientId"), str):
        return None
    secret = parse_reference(str(oauth.get("clientSecret", "")))
    scope = oauth.get("scope")
    if secret is None or not (scope is None or isinstance(scope, str)):
        return None
    return OAuthAuth(client_id=oauth["clientId"], client_secret=secret, scope=scope, source=source)


def uniqueness_issues(docs: Iterable[Document]) -> list[ConfigIssue]:
    """Duplicate names and URLs, reported at the second occurrence."""
    issues: list[ConfigIssue] = []
    names: dict[str, Document] = {}
    urls: dict[str, Document] = {}
    for doc in docs:
        name, url = doc.get("name"), doc.get("url")
        if isinstance(name, str):
            first = names.setdefault(name.casefold(), doc)
            if first is not doc:
                where = _where(first, "name")
                issues.append(
                    doc.issue(("name",), f"tenant name {quoted(name)} is already used by {where}")
                )
        if isinstance(url, str) and url_problem(url) is None:
            first = urls.setdefault(url_identity(url), doc)
            if first is not doc:
                where = _where(first, "url")
                message = f"url {shown(url)} is already the address of {where}"
                issues.append(doc.issue(("url",), message))
    return issues


def _where(doc: Document, key: str) -> str:
    line, column = doc.position((key,))
    return f"{doc.file}:{line}:{column}"


def build_settings(doc: Document) -> Settings:
    """The run settings of a validated root document."""
    settings = doc.get("settings") or {}
    safety = settings.get("safety") or {}
    return Settings(
        concurrency=int(settings.get("concurrency", 64)),
        timeout_s=float(settings.get("timeout", 30.0)),
        deadlines=_deadlines(settings.get("deadline") or {}),
        allowed_hosts=tuple(settings.get("allowedHosts") or DEFAULT_ALLOWED_HOSTS),
        safety=Safety(
            max_changes=_int(safety.get("maxChanges")),
            max_changes_percent=_float(safety.get("maxChangesPercent")),
            max_deletes=_int(safety.get("maxDeletes")),
            max_deletes_percent=_float(safety.get("maxDeletesPercent")),
        ),
        ignore=tuple(
            _ignore_rule(rule, SourcePos(doc.file, *doc.position(("drift", "ignore", index))))
            for index, rule in enumerate(doc.get("drift", "ignore") or [])
        ),
        policy=build_policy(settings),
    )


def _deadlines(given: Mapping[str, Any]) -> Deadlines:
    default = Deadlines()
    return Deadlines(
        read_s=float(given.get("read", default.read_s)),
        write_s=float(given.get("write", default.write_s)),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _ignore_rule(rule: Mapping[str, Any], source: SourcePos) -> IgnoreRule:
    return IgnoreRule(
        tenant=rule["tenant"],
        field=rule["field"],
        reason=rule["reason"].strip(),
        expires=date.fromisoformat(rule["expires"]),
        source=source,
    )
