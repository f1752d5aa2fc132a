"""The fleet's tenants: their credentials and where their state lives.

Credentials are derived, not stored: each is a keyed BLAKE2b hash of the
tenant name and the credential's kind under a fleet key (random, or derived
from the sandbox seed for reproducible runs). Making 10,000 tenants is thus a
few hundred thousand hash calls (well under a second), and tenant state
(`TenantState`) is only created when a request or a test first touches it.
"""

from __future__ import annotations

import hashlib
import os
import threading

from reconciler.sandbox.state import TenantState, tenant_id_for
from reconciler.values import valueclass


@valueclass
class SandboxTenant:
    """One tenant of the fleet and every credential a test may need.

    `api_key` is a tenant admin's key, `nonadmin_api_key` a plain user's
    (403 ROLECHECK-1 on every email-config endpoint). The OAuth client is an
    admin's. `smtp_*` is the tenant's account on the sandbox SMTP server and
    `m365_*` its application registration at the fake identity provider.
    """

    name: str
    url: str
    api_key: str
    nonadmin_api_key: str
    oauth_client_id: str
    oauth_client_secret: str
    smtp_username: str
    smtp_password: str
    m365_provider_tenant_id: str
    m365_client_id: str
    m365_client_secret: str
    email_address: str
    sender_name: str

    def secrets(self) -> tuple[str, ...]:
        """Every secret of this tenant (for leak scans in tests)."""
        return (
            self.api_key,
            self.nonadmin_api_key,
            self.oauth_client_secret,
            self.smtp_password,
            self.m365_client_secret,
        )


def fleet_key(seed: int | None) -> bytes:
    """The key credentials are derived from: random, or fixed by `seed`."""
    if seed is None:
        return os.urandom(32)
    return hashlib.blake2b(f"qlik-email-sandbox:{seed}".encode(), digest_size=32).digest()


def default_names(count: int) -> list[str]:
    """tenant-001, tenant-002, ... (wider numbers past 999)."""
    width = max(3, len(str(count)))
    return [f"tenant-{i:0{width}d}" for i in range(1, count + 1)]


def make_tenant(name: str, base_url: str, key: bytes) -> SandboxTenant:
    """The tenant called `name`, with its credentials derived from `key`."""

    def derive(kind: str, size: int = 16) -> str:
        return hashlib.blake2b(f"{name}\0{kind}".encode(), key=key, digest_size=size).hexdigest()

    return SandboxTenant(
        name=name,
        url=f"{base_url}/t/{name}",
        api_key="sbx-admin-" + derive("api-key", 20),
        nonadmin_api_key="sbx-user-" + derive("nonadmin-api-key", 20),
        oauth_client_id=derive("oauth-client-id"),
        oauth_client_secret="sbx-oauth-" + derive("oauth-client-secret", 24),
        smtp_username=name,
        smtp_password="smtp-" + derive("smtp-password"),
        m365_provider_tenant_id=_uuid(derive("m365-tenant")),
        m365_client_id=_uuid(derive("m365-client")),
        m365_client_secret="m365~" + derive("m365-secret", 20),
        email_address=f"qlik@{name}.example",
        sender_name=name.replace("-", " ").replace("_", " ").title(),
    )


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


class TenantDirectory:
    """Tenants by name, and their state, created on first use.

    `lock` guards every `TenantState`: handlers on the event loop and tests
    on their own thread both change state, always in short critical sections
    (never across an SMTP exchange).
    """

    def __init__(self, tenants: list[SandboxTenant]) -> None:
        self.lock = threading.Lock()
        self._tenants = {tenant.name: tenant for tenant in tenants}
        self._states: dict[str, TenantState] = {}

    def get(self, name: str) -> SandboxTenant | None:
        return self._tenants.get(name)

    def require(self, name: str) -> SandboxTenant:
        """The tenant called `name`; KeyError naming it if there is none."""
        tenant = self._tenants.get(name)
        if tenant is None:
            raise KeyError(f"no sandbox tenant called {name!r}")
        return tenant

    def replace(self, tenant: SandboxTenant) -> None:
        """Swap in a tenant record with changed credentials (same name)."""
        self.require(tenant.name)
        self._tenants[tenant.name] = tenant

    def all(self) -> list[SandboxTenant]:
        return list(self._tenants.values())

    def state(self, name: str) -> TenantState:
        """The tenant's state (call with `lock` held)."""
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = TenantState(tenant_id=tenant_id_for(name))
        return state

    def __len__(self) -> int:
        return len(self._tenants)
