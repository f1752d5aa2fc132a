"""What a pull request may make the tool do, judged against the trusted base.

A tenant is contacted only with the credential reference that the base pairs
with its URL: a tenant the pull request adds, moves to another URL or gives
other credentials is planned from the configuration alone and not read (no
token request, no GET) until the change is merged. References are compared,
never the values they resolve to.

An e-mail secret whose reference or rotation marker changed is shown in the
plan with both reference names (and markers) and the server the value will be
sent to: swapping `${env:T2_SMTP}` for `${env:T1_KEY}` must not plan as "No
changes". After merge, apply learns the same from the record of what it last
applied (`reconciler.engine.applied`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field

from reconciler.model import (
    DesiredEmail,
    DesiredState,
    FieldChange,
    Provider,
    TenantSpec,
    Unmanaged,
)
from reconciler.urls import split_url
from reconciler.values import valueclass

NOT_READ_REASON = "url or credentials changed in this pull request; read after merge"


@valueclass
class SecretMove:
    """A tenant's e-mail secret that will be re-sent: its reference or rotation
    marker differs from the one it is `compared_with` ("base": the trusted base;
    "state": the record of the last apply)."""

    before: str
    after: str
    sent_to: str
    before_rotation: str | None = None
    after_rotation: str | None = None
    compared_with: str = "base"

    def change(self, field: str) -> FieldChange:
        """The sensitive change of the secret `field` that says so: both
        references and markers, and where the value will be sent."""
        return FieldChange(
            field,
            None,
            None,
            True,
            self.before,
            self.after,
            self.sent_to,
            self.before_rotation,
            self.after_rotation,
            self.compared_with,
        )


@valueclass
class Trust:
    """The verdict on a pull request's tenants: those not to contact (by name,
    with the reason) and those whose e-mail secret reference moved."""

    not_read: Mapping[str, str] = field(default_factory=dict)
    secret_moves: Mapping[str, SecretMove] = field(default_factory=dict)
    unmanaged: tuple[Unmanaged, ...] = ()  # base tenants whose files were removed


class Judge:
    """Judges a pull request's tenants one at a time against the base (indexed
    once), each as soon as it is loaded: a tenant is compared with the base
    tenant at the same URL (scheme, host and port case-insensitive; path as
    written)."""

    def __init__(self, base: DesiredState) -> None:
        self._by_url = {_location(t.url): t for t in base.tenants}
        self._by_name = {t.name: t for t in base.tenants}
        self._not_read: dict[str, str] = {}
        self._moves: dict[str, SecretMove] = {}

    def add(self, tenant: TenantSpec) -> bool:
        """Judge `tenant`; True when it may be contacted."""
        trusted = self._by_url.get(_location(tenant.url))
        move = _secret_move(tenant, trusted or self._by_name.get(tenant.name))
        if move is not None:
            self._moves[tenant.name] = move
        if trusted is None or trusted.auth != tenant.auth:
            self._not_read[tenant.name] = NOT_READ_REASON
            return False
        return True

    def trust(self) -> Trust:
        """The verdict on the tenants judged so far."""
        return Trust(dict(self._not_read), dict(self._moves))

    def unmanaged(self, proposed: Sequence[TenantSpec]) -> tuple[Unmanaged, ...]:
        """The base's tenants that no tenant of `proposed` names or points to:
        their files were removed, so they are no longer managed."""
        names = {t.name for t in proposed}
        urls = {_location(t.url) for t in proposed}
        return tuple(
            Unmanaged(name, base.url)
            for name, base in sorted(self._by_name.items())
            if name not in names and _location(base.url) not in urls
        )


def _location(url: str) -> str:
    """A tenant URL, normalised: scheme, host, port (the scheme's default made
    explicit) and path without a trailing slash."""
    split = split_url(url.strip())
    parts = split.parts
    port = split.checked_port() or (443 if parts.scheme.lower() == "https" else 80)
    return f"{parts.scheme.lower()}://{split.hostname}:{port}{parts.path.rstrip('/')}"


def _secret_move(tenant: TenantSpec, trusted: TenantSpec | None) -> SecretMove | None:
    email = tenant.email
    if email is None or email.secret is None:
        return None
    old = trusted.email if trusted is not None else None
    before = old.secret if old is not None else None
    rotation = old.rotation if old is not None else None
    if before == email.secret and rotation == email.rotation:
        return None
    return SecretMove(
        str(before) if before else "(none)",
        str(email.secret),
        destination(email),
        rotation,
        email.rotation,
    )


def destination(email: DesiredEmail) -> str:
    """Where the e-mail secret is sent: the SMTP server, or Microsoft's sign-in
    service for the Microsoft 365 tenant named."""
    values = email.as_dict()
    if email.provider is Provider.MICROSOFT365:
        return f"Microsoft 365 tenant {values.get('providerTenantId', '?')}"
    return f"{values.get('serverAddress', '?')}:{values.get('serverPort', '?')}"
