"""`Sandbox`: a fleet of fake Qlik Cloud tenants, an SMTP server, one object.

    with Sandbox(tenants=3, seed=1) as sb:
        t = sb.tenant("tenant-001")
        httpx.get(t.url + "/api/v1/transports/email-config",
                  headers={"Authorization": f"Bearer {t.api_key}"})

`start()` binds the HTTP port in the calling thread, then runs one event loop
in a background thread that serves HTTP and the three SMTP listeners; SMTP
checks run on that loop too. `stop()` (or leaving the `with` block)
closes everything. The methods below are for tests: they look at and change
the tenants' state behind the API's back.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.sandbox import certs, state
from reconciler.sandbox.api import SandboxApp
from reconciler.sandbox.auth import DEFAULT_TOKEN_LIFETIME_S, Authenticator
from reconciler.sandbox.clock import Clock
from reconciler.sandbox.configwriter import write_config
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.httpserver import HttpServer
from reconciler.sandbox.identity import IdentityProvider
from reconciler.sandbox.inputcheck import check_put
from reconciler.sandbox.loop import BackgroundLoop
from reconciler.sandbox.mailbox import Mailbox
from reconciler.sandbox.operations import EmailConfigOperations
from reconciler.sandbox.probe import Prober
from reconciler.sandbox.ratelimit import RateLimiter
from reconciler.sandbox.smtp import CredentialRegistry, SmtpServer
from reconciler.sandbox.stats import LogEntry, Recorder, Stats
from reconciler.sandbox.tenants import (
    SandboxTenant,
    TenantDirectory,
    default_names,
    fleet_key,
    make_tenant,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class Sandbox:
    """A local stand-in for a fleet of Qlik Cloud tenants.

    Where things are: `base_url`, `tenants`, `tenant(name)`, `smtp_host`,
    `smtp_ports`, `smtp_ca_pem`, `mailbox`, `identity`, `smtp_accounts`.
    Knobs: `faults`, `set_rate_limit`, `rate_limits_enabled`, `patch_enabled`,
    `token_lifetime_s`, `advance_time`. Observability: `request_log`, `stats`,
    `reset_stats`. Behind the API's back: `live_config`, `health`, `edit`,
    `break_password`, `set_smtp_password`, `seed`, `seed_legacy`. Helpers:
    `basic_auth_body`, `m365_body`, `describe`, `write_config`.
    """

    def __init__(
        self,
        tenants: int = 3,
        *,
        names: Sequence[str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        rate_limits: bool = True,
        tier1: int = 1000,
        tier2: int = 100,
        seed: int | None = None,
        token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S,
        patch_enabled: bool = False,
        smtp_timeout_s: float = 10.0,
        latency_ms: float = 0.0,
        log_limit: int = 20_000,
        https: bool = False,
        hostile: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """`hostile` maps tenant names to the hostile kinds they play from the
        start (`sandbox.hostile`; `faults.set(hostile=...)` changes them later)."""
        self._names = _check_names(list(names) if names is not None else default_names(tenants))
        self.clock = Clock()
        self.faults = Faults(seed)
        if latency_ms:
            self.faults.set(latency_ms=latency_ms)
        for name, kinds in (hostile or {}).items():
            if name not in self._names:
                raise ValueError(f"hostile: no tenant named {name}")
            self.faults.set(latency_ms=latency_ms, hostile=tuple(kinds), tenant=name)
        self._limiter = RateLimiter(self.clock, tier1=tier1, tier2=tier2)
        self._limiter.enabled = rate_limits
        self._auth = Authenticator(self.clock, token_lifetime_s)
        self._recorder = Recorder(log_limit)
        self._identity = IdentityProvider(self.clock)
        self._accounts = CredentialRegistry()
        self._mailbox = Mailbox()
        self._key = fleet_key(seed)
        self._http = HttpServer(None, host, port)
        self._patch_enabled = patch_enabled
        self._smtp_timeout_s = smtp_timeout_s
        self._directory = TenantDirectory([])
        self._operations: EmailConfigOperations | None = None
        self._smtp: SmtpServer | None = None
        self._loop = BackgroundLoop("qlik-email-sandbox")
        self._tls: certs.TlsMaterial | None = None
        self._https = https

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind, build the fleet and serve in a background thread; returns self."""
        if self._loop.running:
            raise RuntimeError("the sandbox is already running")
        port = self._http.bind()
        self._tls = certs.generate()
        # https=True serves the API with a certificate of the sandbox's own CA
        # (`smtp_ca_pem`), which clients trust only when told to.
        self._http.ssl = self._tls.server_context() if self._https else None
        scheme = "https" if self._https else "http"
        self._build_fleet(f"{scheme}://{self._http.host}:{port}")
        prober = Prober(self._identity, self._tls.client_context())
        prober.timeout_s = self._smtp_timeout_s
        self._operations = EmailConfigOperations(self._directory, prober, self.clock)
        self._operations.patch_enabled = self._patch_enabled
        self._http.app = SandboxApp(
            self._directory,
            self._operations,
            self._auth,
            self._limiter,
            self.faults,
            self._recorder,
        )
        smtp = self._smtp = SmtpServer(
            registry=self._accounts, mailbox=self._mailbox, identity=self._identity, tls=self._tls
        )

        async def serve() -> None:
            ports = await smtp.start()
            prober.m365_smtp = (smtp.host, ports["StartTLS"])
            await self._http.start()

        try:
            self._loop.start(serve)
        except BaseException:
            self._http.close()
            self.stop()
            raise
        return self

    def _build_fleet(self, base_url: str) -> None:
        """The tenants, their SMTP accounts and their Microsoft 365 registrations."""
        tenants = [make_tenant(name, base_url, self._key) for name in self._names]
        self._directory = TenantDirectory(tenants)
        for tenant in tenants:
            self._accounts.set(tenant.smtp_username, tenant.smtp_password)
            self._identity.register(
                tenant.m365_provider_tenant_id, tenant.m365_client_id, tenant.m365_client_secret
            )

    def stop(self) -> None:
        """Close every listener and connection and end the background thread."""
        self._loop.stop(self._shutdown)

    async def _shutdown(self) -> None:
        self._http.close()
        if self._smtp is not None:
            self._smtp.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- where things are ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        scheme = "https" if self._https else "http"
        return f"{scheme}://{self._http.host}:{self._http.port}"

    @property
    def tenants(self) -> list[SandboxTenant]:
        return self._directory.all()

    def tenant(self, name: str) -> SandboxTenant:
        """The tenant called `name` (KeyError if there is none)."""
        return self._directory.require(name)

    @property
    def smtp_host(self) -> str:
        return self._running_smtp().host

    @property
    def smtp_ports(self) -> dict[str, int]:
        """The SMTP listeners by securityType: {"none", "StartTLS", "SSL/TLS"}."""
        return dict(self._running_smtp().ports)

    @property
    def smtp_ca_pem(self) -> str:
        """The CA certificate the SMTP listeners' certificate is signed by."""
        if self._tls is None:
            raise RuntimeError("the sandbox is not started")
        return self._tls.ca_pem.decode("ascii")

    @property
    def smtp_accounts(self) -> CredentialRegistry:
        """The SMTP server's accounts (username -> password), one per tenant."""
        return self._accounts

    @property
    def identity(self) -> IdentityProvider:
        """The fake Microsoft identity platform (one app registration per tenant)."""
        return self._identity

    @property
    def mailbox(self) -> Mailbox:
        """Every message the SMTP server accepted (list-like; `for_recipient`, `clear`)."""
        return self._mailbox

    def _running_smtp(self) -> SmtpServer:
        if self._smtp is None or not self._smtp.ports:
            raise RuntimeError("the sandbox is not started")
        return self._smtp

    # -- knobs ----------------------------------------------------------------------

    def set_rate_limit(
        self, *, tier1: int | None = None, tier2: int | None = None, tenant: str | None = None
    ) -> None:
        """Per-minute limits for every tenant, or one (`tenant=`)."""
        self._limiter.set_limits(tier1=tier1, tier2=tier2, tenant=tenant)

    @property
    def rate_limits_enabled(self) -> bool:
        return self._limiter.enabled

    @rate_limits_enabled.setter
    def rate_limits_enabled(self, enabled: bool) -> None:
        self._limiter.enabled = enabled

    @property
    def patch_enabled(self) -> bool:
        """Whether the deprecated PATCH still works (default: 410 Gone)."""
        return self._patch_enabled

    @patch_enabled.setter
    def patch_enabled(self, enabled: bool) -> None:
        self._patch_enabled = enabled
        if self._operations is not None:
            self._operations.patch_enabled = enabled

    @property
    def token_lifetime_s(self) -> float:
        return self._auth.token_lifetime_s

    @token_lifetime_s.setter
    def token_lifetime_s(self, seconds: float) -> None:
        self._auth.token_lifetime_s = seconds

    def advance_time(self, seconds: float) -> None:
        """Move the sandbox clock forward (token expiry, rate-limit windows)."""
        self.clock.advance(seconds)

    # -- observability --------------------------------------------------------------

    @property
    def request_log(self) -> list[LogEntry]:
        return self._recorder.log()

    @property
    def stats(self) -> Stats:
        return self._recorder.snapshot()

    def reset_stats(self) -> None:
        """Clear the request log and the counters."""
        self._recorder.reset()

    def access_tokens(self) -> list[str]:
        """Every OAuth access token issued so far (for leak scans in tests)."""
        return self._auth.issued()

    def reset_rate_limits(self) -> None:
        """Forget the requests counted so far (the limits themselves stay)."""
        self._limiter.reset()

    # -- state behind the API's back ------------------------------------------------

    def live_config(self, name: str) -> dict[str, Any] | None:
        """The stored configuration with its secret (tests only), or None.

        A PUT-made one has the PUT body's shape (`serviceProvider`,
        `providerConfig` with `emailPassword`/`clientSecret`); a legacy one is
        its top-level fields. Health is not included (see `health`): a
        refused PUT changes the health, never the configuration.
        """
        self.tenant(name)
        with self._directory.lock:
            return state.secret_view(self._directory.state(name))

    def health(self, name: str) -> dict[str, Any]:
        """The tenant's health as GET shows it (isValid, errorCode, authFailures, ...)."""
        self.tenant(name)
        with self._directory.lock:
            shown = state.view(self._directory.state(name))
        keys = ("isValid", "errorCode", "authFailures", "status", "modificationTime", "lastUpdated")
        return {key: shown[key] for key in keys if key in shown}

    def edit(self, name: str, **fields: Any) -> None:
        """Change stored fields (API names; secret and health fields allowed)."""
        self.tenant(name)
        with self._directory.lock:
            state.edit(self._directory.state(name), fields, self.clock.now())

    def break_password(self, name: str) -> None:
        """Make the stored secret wrong; GET still looks the same, checks now fail."""
        self.tenant(name)
        with self._directory.lock:
            config = self._directory.state(name).config
            if config is None:
                raise ValueError(f"{name} has no email configuration whose secret could break")
            config.secret = (config.secret or "") + "-broken"

    def set_smtp_password(self, name: str, password: str) -> None:
        """Change the tenant's password on the SMTP server, as a mail provider rotation would.

        The stored configuration keeps the old password (its checks now fail)
        until a PUT sends the new one; `tenant(name).smtp_password` and
        `write_config` follow the new password.
        """
        tenant = self.tenant(name)
        self._accounts.set(tenant.smtp_username, password)
        self._directory.replace(dataclasses.replace(tenant, smtp_password=password))

    def expire_smtp_password_after(self, name: str, logins: int) -> None:
        """Let the tenant's SMTP account log in `logins` more times, then refuse
        its password (e.g. PUT succeeds, the verify-connection right after fails)."""
        self._running_smtp().registry.expire_after(self.tenant(name).smtp_username, logins)

    def seed(self, name: str, config: Mapping[str, Any] | None) -> None:
        """Set a starting state without any check: a PUT body, legacy fields, or None.

        A mapping with `serviceProvider` is a PUT body; one without is a set of
        legacy top-level fields (see `seed_legacy`). `isValid`, `errorCode` and
        `authFailures` may be added to either to set the health.
        """
        if config is not None and "serviceProvider" not in config:
            self.seed_legacy(name, config)
            return
        self.tenant(name)
        body = dict(config or {})
        health = {k: body.pop(k) for k in state.HEALTH_FIELDS if k in body}
        parsed = check_put(body) if config is not None else None
        if isinstance(parsed, list):
            raise ValueError("invalid seed: " + "; ".join(parsed))
        with self._directory.lock:
            tenant_state = self._directory.state(name)
            state.delete(tenant_state)
            if parsed is not None:
                state.replace(tenant_state, parsed, self.clock.now())
                state.edit(tenant_state, health, self.clock.now())

    def seed_legacy(self, name: str, fields: Mapping[str, Any]) -> None:
        """Set a legacy configuration (as the deprecated PATCH made them)."""
        self.tenant(name)
        values = dict(fields)
        health = {k: values.pop(k) for k in state.HEALTH_FIELDS if k in values}
        allowed = {*state.LEGACY_TOP_LEVEL, "emailPassword"}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ValueError(f"not a legacy field: {', '.join(unknown)}")
        with self._directory.lock:
            tenant_state = self._directory.state(name)
            state.delete(tenant_state)
            state.set_legacy_fields(tenant_state, values, self.clock.now())
            state.edit(tenant_state, health, self.clock.now())

    # -- helpers for tests and the demo ---------------------------------------------

    def basic_auth_body(
        self, name: str, security: str = "StartTLS", **overrides: Any
    ) -> dict[str, Any]:
        """A PUT body with the tenant's right SMTP credentials for one listener."""
        tenant = self.tenant(name)
        config: dict[str, Any] = {
            "serverAddress": self.smtp_host,
            "serverPort": self.smtp_ports[security],
            "securityType": security,
            "username": tenant.smtp_username,
            "emailPassword": tenant.smtp_password,
            "emailAddress": tenant.email_address,
            "senderName": tenant.sender_name,
        }
        config.update(overrides)
        return {"serviceProvider": "BasicAuth", "providerConfig": config}

    def m365_body(self, name: str, **overrides: Any) -> dict[str, Any]:
        """A PUT body with the tenant's right Microsoft 365 registration."""
        tenant = self.tenant(name)
        config: dict[str, Any] = {
            "clientId": tenant.m365_client_id,
            "clientSecret": tenant.m365_client_secret,
            "providerTenantId": tenant.m365_provider_tenant_id,
            "emailAddress": tenant.email_address,
        }
        config.update(overrides)
        return {"serviceProvider": "Microsoft365", "providerConfig": config}

    def describe(self) -> dict[str, Any]:
        """Everything a separate process needs (the `--ready-file` document)."""
        return {
            "base_url": self.base_url,
            "smtp_host": self.smtp_host,
            "smtp_ports": self.smtp_ports,
            "smtp_ca_pem": self.smtp_ca_pem,
            "tenants": [_tenant_dict(t) for t in self.tenants],
        }

    def write_config(
        self,
        directory: str | Path,
        *,
        auth: str = "apiKey",
        microsoft365: Sequence[str] = (),
        absent: Sequence[str] = (),
        secrets: str = "file",
    ) -> Path:
        """Write a config repository for this fleet (see `configwriter`); returns its root."""
        return write_config(
            self,
            Path(directory),
            auth=auth,
            microsoft365=microsoft365,
            absent=absent,
            secrets=secrets,
        )


def _tenant_dict(tenant: SandboxTenant) -> dict[str, str]:
    return dataclasses.asdict(tenant)


def _check_names(names: list[str]) -> list[str]:
    if not names:
        raise ValueError("a sandbox needs at least one tenant")
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise ValueError(f"tenant names must be URL-safe (letters, digits, . _ -): {bad[:3]}")
    if len(set(names)) != len(names):
        raise ValueError("tenant names must be unique")
    return names
