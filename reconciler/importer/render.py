"""Configuration files from live state: the text `qlik-email import` writes. Pure.

A tenant file holds everything the tenant's live configuration says, so that
it plans as no-op as written. The API never returns secrets, so each secret
field is a reference to fill in, `${env:<TENANT>_SMTP_PASSWORD}` or
`${env:<TENANT>_M365_CLIENT_SECRET}` (the tenant name upper-cased, anything
but letters and digits turned into `_`): the same names `validate` suggests.

Strings are written as double-quoted YAML scalars (JSON string syntax with
non-printable characters escaped), so any value reads back exactly.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.config.checks import example_reference
from reconciler.jsonschemas import load_schema
from reconciler.model import PROVIDER_FIELDS, SECRET_FIELD, LiveEmail, LiveState, Provider, Scalar
from reconciler.values import valueclass

ABSENT = "absent"
_PLAIN_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_REQUIRED = {
    Provider.BASIC_AUTH: ("serverAddress", "serverPort", "securityType", "username"),
    Provider.MICROSOFT365: ("clientId", "providerTenantId"),
}
# The secret goes right after the field it belongs with.
_SECRET_AFTER = {Provider.BASIC_AUTH: "username", Provider.MICROSOFT365: "clientId"}


@valueclass
class ImportedTenant:
    """One tenant file to write. `kind` is the provider's name or "absent";
    `secret_ref` the reference written for its secret (None when absent)."""

    name: str
    text: str
    kind: str
    legacy: bool = False
    secret_ref: str | None = None
    secret_field: str | None = None


def schema_modeline(kind: str) -> str:
    """`# yaml-language-server: $schema=...` for "root" or "tenant" files."""
    return f"# yaml-language-server: $schema={load_schema(f'{kind}.schema.json')['$id']}"


def render_root(
    default_auth: Mapping[str, Any] | None,
    count: int,
    day: str,
    email: Mapping[str, Scalar] | None = None,
    hosts: Sequence[str] = (),
) -> str:
    """The root file: the schema modeline, defaults.auth (when given),
    defaults.email (the values every tenant shares), the glob, and
    settings.allowedHosts when some tenant is on a host the default does not allow."""
    lines = [
        schema_modeline("root"),
        "#",
        f"# Written by `qlik-email import` on {day} from the live configuration of "
        f"{count} tenant(s).",
        "# Secrets are references to fill in (the API never returns them): see each",
        "# tenant file, then run `qlik-email plan`.",
        "version: 1",
    ]
    if default_auth is not None or email:
        lines.append("defaults:")
    if default_auth is not None:
        lines += ["  auth:", *_mapping(default_auth, 4)]
    if email:
        lines += ["  email:", *_mapping(email, 4)]
    lines.append("tenants: tenants/*.yaml")
    if hosts:
        lines += ["settings:", "  allowedHosts:", *(f"    - {quote(host)}" for host in hosts)]
    return "\n".join(lines) + "\n"


def shared_email(emails: Sequence[LiveEmail]) -> dict[str, Scalar]:
    """The e-mail values every configured tenant shares, for `defaults.email`:
    the provider when all have the same, and each field whose value is the same
    for every tenant that would take it from the defaults (those whose provider
    has the field). Nothing for fewer than two tenants; never a secret."""
    if len(emails) < 2:
        return {}
    providers = {email.provider for email in emails}
    shared: dict[str, Scalar] = {}
    if len(providers) == 1:
        shared["provider"] = next(iter(providers)).value
    names = dict.fromkeys(name for p in Provider if p in providers for name in PROVIDER_FIELDS[p])
    for name in names:
        values = [e.as_dict().get(name) for e in emails if name in PROVIDER_FIELDS[e.provider]]
        if values[0] is not None and all(value == values[0] for value in values):
            shared[name] = values[0]
    return shared


def secret_references(names: Iterable[str]) -> dict[str, str]:
    """The name each tenant's secret reference is derived from: its own, except for
    names that would share a reference (such as `a-b` and `a.b`), which get a short
    digest of the name to tell them apart."""
    names = list(names)
    path = ("email", "password")
    counts: dict[str, int] = {}
    for name in names:
        ref = example_reference(name, path)
        counts[ref] = counts.get(ref, 0) + 1
    result = {}
    for name in names:
        if counts[example_reference(name, path)] > 1:
            result[name] = f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
        else:
            result[name] = name
    return result


def secret_reference(ref_name: str, provider: Provider) -> str:
    """`${env:ACME_SMTP_PASSWORD}` or `${env:ACME_M365_CLIENT_SECRET}` for `ref_name`."""
    return example_reference(ref_name, ("email", SECRET_FIELD[provider]))


def render_tenant(
    name: str,
    url: str,
    auth: Mapping[str, Any] | None,
    live: LiveState,
    ref_name: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> ImportedTenant:
    """The tenant file for `name` as its live state `live` is; its secret reference
    is derived from `ref_name` (default: the name; see `secret_references`).
    Values equal to those of `defaults` (the root's `defaults.email`) are left
    out: the tenant takes them from there."""
    defaults = defaults or {}
    head = [schema_modeline("tenant"), f"# Imported by `qlik-email import` from {url}."]
    body = [f"name: {quote(name)}", f"url: {quote(url)}"]
    if auth is not None:
        body += ["auth:", *_mapping(auth, 2)]
    email = live.email
    if email is None:
        head += [
            "# The tenant had no e-mail configuration. `absent` keeps it that way:",
            "# apply deletes a configuration made outside this repository.",
        ]
        text = "\n".join([*head, *body, f"email: {ABSENT}"]) + "\n"
        return ImportedTenant(name, text, ABSENT)
    secret_ref = secret_reference(ref_name or name, email.provider)
    head += _notes(email) + _default_notes(email, defaults)
    body += ["email:", *_email_lines(email, secret_ref, defaults)]
    return ImportedTenant(
        name,
        "\n".join([*head, *body]) + "\n",
        email.provider.value,
        legacy=email.legacy,
        secret_ref=secret_ref,
        secret_field=SECRET_FIELD[email.provider],
    )


def _notes(email: LiveEmail) -> list[str]:
    notes = []
    if email.legacy:
        notes += [
            "# Made by the deprecated PATCH (no serviceProvider): imported as BasicAuth.",
            "# plan shows `provider` as a change: the next apply migrates it with a PUT.",
        ]
    if not email.secret_exists:
        notes.append(
            f"# The tenant reports no {SECRET_FIELD[email.provider]}: plan shows it as a change."
        )
    values = email.as_dict()
    missing = [field for field in _REQUIRED[email.provider] if field not in values]
    if "emailAddress" not in values:
        missing.append("emailAddress")
    if missing:
        notes.append(f"# The live configuration has no {', '.join(missing)}: fill it in.")
    return notes


def _default_notes(email: LiveEmail, defaults: Mapping[str, Any]) -> list[str]:
    """Values the defaults would give the tenant that it does not have."""
    values = email.as_dict()
    extra = [f for f in PROVIDER_FIELDS[email.provider] if f in defaults and f not in values]
    if not extra:
        return []
    return [
        f"# defaults.email gives this tenant {', '.join(extra)}, which its live "
        "configuration has not: plan shows it as a change."
    ]


def _email_lines(email: LiveEmail, secret_ref: str, defaults: Mapping[str, Any]) -> list[str]:
    values = email.as_dict()
    inherited = defaults.get("provider") == email.provider.value and not email.legacy
    lines = [] if inherited else [f"  provider: {email.provider.value}"]
    for field in PROVIDER_FIELDS[email.provider]:
        if field in values and not _same(defaults.get(field), values[field]):
            lines.append(f"  {field}: {_scalar(values[field])}")
        if field == _SECRET_AFTER[email.provider]:
            lines.append(f"  {SECRET_FIELD[email.provider]}: {quote(secret_ref)}")
    return lines


def _same(default: object, value: Scalar) -> bool:
    """Whether a default equals a live value (YAML may read a port as 587.0)."""
    if isinstance(default, bool) or default is None:
        return False
    if isinstance(value, int) and isinstance(default, (int, float)):
        return default == value
    return isinstance(default, str) and default == value


def _mapping(values: Mapping[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for name, value in values.items():
        # Keys of an inventory's auth are the user's: quoted unless plainly a name.
        key = name if _PLAIN_KEY.match(name) else quote(str(name))
        if isinstance(value, Mapping):
            lines += [f"{pad}{key}:", *_mapping(value, indent + 2)]
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return lines


def _scalar(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return quote(str(value))
    return str(value)


def quote(text: str) -> str:
    """`text` as a double-quoted YAML scalar that reads back exactly."""
    return "".join(_escape(char) for char in json.dumps(text, ensure_ascii=False))


def _escape(char: str) -> str:
    # json.dumps leaves some characters YAML treats specially (line separators, BOM).
    if char.isprintable() or char in '\\"':
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def summary_counts(tenants: Sequence[ImportedTenant]) -> dict[str, int]:
    """How many tenants of each kind, and how many legacy configurations."""
    counts = {provider.value: 0 for provider in Provider}
    counts[ABSENT] = 0
    for tenant in tenants:
        counts[tenant.kind] += 1
    counts["legacy"] = sum(1 for t in tenants if t.legacy)
    return counts
