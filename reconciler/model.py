"""The typed, immutable model that flows through the pipeline.

    config files -> DesiredState (TenantSpec, DesiredEmail)
    tenants      -> LiveState (LiveEmail, Health)
    planner      -> Plan (TenantPlan, FieldChange)

Field names are those of the configuration language (`serverAddress`,
`password`, `clientSecret`, ...); only the client speaks the API's JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import field
from datetime import date
from enum import Enum
from pathlib import Path

import orjson

from reconciler.secrets import SecretRef
from reconciler.values import valueclass

Scalar = str | int


class Provider(str, Enum):
    """The `serviceProvider` of a configuration."""

    BASIC_AUTH = "BasicAuth"
    MICROSOFT365 = "Microsoft365"


# The non-secret fields of each provider, in the order reports show them.
PROVIDER_FIELDS: Mapping[Provider, tuple[str, ...]] = {
    Provider.BASIC_AUTH: (
        "serverAddress",
        "serverPort",
        "securityType",
        "username",
        "emailAddress",
        "senderName",
    ),
    Provider.MICROSOFT365: ("clientId", "providerTenantId", "emailAddress"),
}
# The write-only secret field of each provider (config name).
SECRET_FIELD: Mapping[Provider, str] = {
    Provider.BASIC_AUTH: "password",
    Provider.MICROSOFT365: "clientSecret",
}
# The optional rotation marker written next to each provider's secret: bumping
# it (a counter or a date) asks apply to re-send the secret.
ROTATION_FIELD: Mapping[Provider, str] = {
    Provider.BASIC_AUTH: "passwordRotation",
    Provider.MICROSOFT365: "clientSecretRotation",
}
SECURITY_TYPES = ("none", "StartTLS", "SSL/TLS")


@valueclass
class SourcePos:
    """Where a value was written: file and 1-based line and column."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@valueclass
class DesiredEmail:
    """The e-mail configuration a tenant should have.

    `fields` holds the non-secret fields as sorted (name, value) pairs; `secret`
    is the reference to the password (BasicAuth) or client secret (Microsoft365),
    written at `secret_source`; `rotation` is its rotation marker (`passwordRotation`
    or `clientSecretRotation`, as text), never sent to the tenant.
    """

    provider: Provider
    fields: tuple[tuple[str, Scalar], ...]
    secret: SecretRef | None = None
    secret_source: SourcePos | None = field(default=None, compare=False)
    rotation: str | None = None

    def as_dict(self) -> dict[str, Scalar]:
        return dict(self.fields)

    @classmethod
    def of(
        cls,
        provider: Provider,
        values: Mapping[str, Scalar],
        secret: SecretRef | None = None,
        secret_source: SourcePos | None = None,
        rotation: str | None = None,
    ) -> DesiredEmail:
        """Build from a mapping, keeping only the provider's non-secret fields."""
        known = PROVIDER_FIELDS[provider]
        pairs = tuple(sorted((k, v) for k, v in values.items() if k in known))
        return cls(provider, pairs, secret, secret_source, rotation)


@valueclass
class ApiKeyAuth:
    """Authenticate with a Bearer API key (`source`: where the auth was written)."""

    key: SecretRef
    source: SourcePos | None = field(default=None, compare=False)


@valueclass
class OAuthAuth:
    """Authenticate with OAuth2 client credentials (`POST /oauth/token`)."""

    client_id: str
    client_secret: SecretRef
    scope: str | None = None
    source: SourcePos | None = field(default=None, compare=False)


Auth = ApiKeyAuth | OAuthAuth


@valueclass
class Pause:
    """A tenant deliberately left alone (`paused:` in its file): not contacted by
    plan, apply or drift while `until` (the last paused day, inclusive; None: no
    end) has not passed."""

    reason: str
    until: date | None = None
    source: SourcePos | None = field(default=None, compare=False)

    def active(self, today: date) -> bool:
        """Whether the tenant is still paused on `today`."""
        return self.until is None or today <= self.until

    def describe(self) -> str:
        """`REASON (until YYYY-MM-DD)`, as reports show it."""
        until = f" (until {self.until.isoformat()})" if self.until is not None else ""
        return f"{self.reason}{until}"


@valueclass
class TenantSpec:
    """One managed tenant. `email` None means `email: absent` (delete the config);
    `paused` is the tenant's pause, whether or not its end has passed."""

    name: str
    url: str
    auth: Auth
    email: DesiredEmail | None
    source: SourcePos
    paused: Pause | None = None


@valueclass
class Safety:
    """How much one apply may change before it needs --force (None: no limit)."""

    max_changes: int | None = None
    max_changes_percent: float | None = None
    max_deletes: int | None = None
    max_deletes_percent: float | None = None


@valueclass
class IgnoreRule:
    """Known drift to silence until `expires` (tenant is a glob on tenant names)."""

    tenant: str
    field: str
    reason: str
    expires: date
    # Where it is written (`field` is taken by the rule's own field name).
    source: SourcePos | None = dataclasses.field(default=None, compare=False)


@valueclass
class Policy:
    """What e-mail settings may say (`settings.policy`): globs of the SMTP hosts a
    password may be sent to and of the sender domains (None: any), and whether
    a password may travel unencrypted (`requireTls` refuses securityType none)."""

    smtp_hosts: tuple[str, ...] | None = None
    sender_domains: tuple[str, ...] | None = None
    require_tls: bool = False


DEFAULT_ALLOWED_HOSTS = ("*.qlikcloud.com", "*.qlikcloudgov.com")


@valueclass
class Deadlines:
    """Seconds one tenant's step may take in all, retries and waits included:
    `read_s` a read (plan, drift, import, and apply's first read), `write_s`
    what apply does to a tenant after that (the write, verify-connection, the
    read-back, the test e-mail) and drift --verify's verify-connection."""

    read_s: float = 45.0
    write_s: float = 120.0

    def tightened(self, other: Deadlines) -> Deadlines:
        """The shorter of each deadline of `self` and `other`."""
        return Deadlines(min(self.read_s, other.read_s), min(self.write_s, other.write_s))


@valueclass
class Settings:
    """Run settings from the root file."""

    concurrency: int = 64
    timeout_s: float = 30.0
    deadlines: Deadlines = field(default_factory=Deadlines)
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    safety: Safety = field(default_factory=Safety)
    ignore: tuple[IgnoreRule, ...] = ()
    policy: Policy = field(default_factory=Policy)


@valueclass
class DesiredState:
    """Everything the configuration repository asks for."""

    root: Path
    tenants: tuple[TenantSpec, ...]
    settings: Settings = field(default_factory=Settings)


@valueclass
class Health:
    """What the API says about a configuration's health."""

    is_valid: bool | None = None
    error_code: str | None = None
    auth_failures: int | None = None
    status_code: int | None = None
    status_reason: str | None = None
    modification_time: str | None = None


@valueclass
class LiveEmail:
    """A tenant's live configuration, normalised. `legacy` marks configs that carry
    only the top-level fields a deprecated PATCH made (no `serviceProvider`)."""

    provider: Provider
    fields: tuple[tuple[str, Scalar], ...]
    secret_exists: bool
    legacy: bool = False

    def as_dict(self) -> dict[str, Scalar]:
        return dict(self.fields)


@valueclass
class ReadFailure:
    """Why a tenant's live state could not be read (its message names the tenant)."""

    message: str

    def __str__(self) -> str:
        return self.message


@valueclass
class LiveState:
    """A tenant as read: its config (None when it has none), health, and a
    fingerprint of the config used to detect changes between plan and apply."""

    email: LiveEmail | None
    health: Health
    fingerprint: str


LiveRead = LiveState | ReadFailure  # what reading one tenant gives


def fingerprint(document: object) -> str:
    """A short, stable digest of a JSON-ready `document` (keys sorted): how plans,
    saved plans and drift reports recognise that the same thing is described.

    The digest is that of `json.dumps(document, sort_keys=True, separators=(",",
    ":"))`, the text it always was (saved plans carry it). orjson writes that
    text for less (bench/NOTES.md, "Fingerprints written by orjson") for a
    document of strings, ints, booleans and None, as every caller's is, when
    it is ASCII without DEL (which json escapes): otherwise json writes it
    (tests/engine/test_planner.py holds the two to each other). A float may be
    written otherwise (orjson's 1e16 is json's 1e+16): no caller's holds one."""
    try:
        canonical = orjson.dumps(document, option=_ORJSON)
    except orjson.JSONEncodeError:  # an int beyond 64 bits, a lone surrogate
        canonical = b""
    if not canonical or not canonical.isascii() or b"\x7f" in canonical:
        canonical = _CANONICAL(document).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()[:32]


# `json.dumps(document, sort_keys=True, separators=(",", ":"))`, without making
# an encoder for every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
# What orjson would write and json refuses (dataclasses, dates) goes to json too.
_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


class Action(str, Enum):
    """What a plan does to one tenant."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"  # provider switch: the whole config is replaced
    DELETE = "delete"
    NOOP = "no-op"


# The `before_ref` of a secret re-sent because apply has no record of it.
NOT_RECORDED = "(not recorded)"


@valueclass
class FieldChange:
    """One field's change. Sensitive fields carry no values, only that they change."""

    field: str
    before: Scalar | None
    after: Scalar | None
    sensitive: bool = False
    # A secret re-sent because its reference or rotation marker changed since
    # `compared_with` ("base": the trusted base; "state": the record of the last
    # apply): both references and markers, and where the value will be sent.
    # References are names, never values.
    before_ref: str | None = None
    after_ref: str | None = None
    sent_to: str | None = None
    before_rotation: str | None = None
    after_rotation: str | None = None
    compared_with: str | None = None


@valueclass
class TenantPlan:
    """The plan for one tenant; `error` is set when its live state could not be read."""

    tenant: str
    url: str
    action: Action
    changes: tuple[FieldChange, ...] = ()
    provider_before: Provider | None = None
    provider_after: Provider | None = None
    live_fingerprint: str = ""
    desired_fingerprint: str = ""
    error: str | None = None
    not_read: str | None = None  # why the tenant was not contacted (`--base`)
    paused: str | None = None  # the pause's reason (and end): not contacted


@valueclass
class Unmanaged:
    """A tenant of the trusted base whose file the pull request removed: no
    longer managed, and left as it is (deleting its configuration takes
    `email: absent`)."""

    name: str
    url: str


UNMANAGED_NOTE = "no longer managed: left as it is; set `email: absent` to delete its configuration"


@valueclass
class ApplyNeed:
    """A flag `apply` will need to carry a plan out, and why."""

    flag: str  # "--allow-delete" or "--force"
    reason: str


@valueclass
class Plan:
    """Every tenant's plan, in a deterministic order (by tenant name). `shard` is
    the `--shard I/N` it covers (None: every selected tenant); `config_root` the
    configuration repository it was made from (None when merged from several),
    and `config_commit` / `config_path` its git commit and its directory from the
    repository's top (saved plans made in a git checkout); `needs` the flags
    apply will need to carry it out; `unmanaged` the tenants of the base
    (`--base`) whose files the pull request removed."""

    tenants: tuple[TenantPlan, ...]
    shard: str | None = None
    config_root: str | None = None
    needs: tuple[ApplyNeed, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    config_commit: str | None = None
    config_path: str | None = None

    def count(self, action: Action) -> int:
        return sum(1 for t in self.planned if t.action is action)

    @property
    def planned(self) -> tuple[TenantPlan, ...]:
        """The tenants that were read and planned."""
        return tuple(
            t for t in self.tenants if t.error is None and t.not_read is None and t.paused is None
        )

    @property
    def paused(self) -> tuple[TenantPlan, ...]:
        """The tenants paused in their files (not contacted)."""
        return tuple(t for t in self.tenants if t.paused is not None)

    @property
    def not_read(self) -> tuple[TenantPlan, ...]:
        """The tenants deliberately not contacted (their desired state only)."""
        return tuple(t for t in self.tenants if t.not_read is not None)

    @property
    def errors(self) -> tuple[TenantPlan, ...]:
        return tuple(t for t in self.tenants if t.error is not None)

    @property
    def has_changes(self) -> bool:
        return any(t.action is not Action.NOOP for t in self.planned)


@valueclass
class AppliedSecret:
    """One tenant's last fully applied secret: its URL, reference and marker
    (`secret` None: the tenant's configuration was deleted)."""

    url: str
    secret: str | None
    rotation: str | None = None


@valueclass
class AppliedRecord:
    """Every recorded tenant, by name."""

    tenants: Mapping[str, AppliedSecret] = field(default_factory=dict)
