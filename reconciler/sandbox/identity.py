"""A fake Microsoft identity platform (the token endpoint Microsoft 365 uses).

Real Qlik Cloud validates a Microsoft365 configuration by asking
`login.microsoftonline.com/<providerTenantId>/oauth2/v2.0/token` for a
client-credentials token. The sandbox asks this object instead, with an
in-process call: the tool under test never talks to the identity platform
itself, so an HTTP route would add nothing but a way to fail. The error codes
and messages are those Microsoft Entra ID answers with.

Tokens issued here are also accepted by the sandbox SMTP server as
`AUTH XOAUTH2` bearer tokens, which is how send-test-email delivers mail for a
Microsoft365 configuration.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from typing import Literal

from reconciler.sandbox.clock import Clock
from reconciler.values import valueclass

TOKEN_LIFETIME_S = 3600.0


@valueclass
class IdentityError:
    """A refused token request: Entra ID's AADSTS code and message.

    `kind` says how Qlik would classify it: `credentials` (the client or its
    secret is wrong) or `provider` (the directory itself is unknown).
    """

    code: str
    message: str
    kind: Literal["credentials", "provider"]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@valueclass
class IdentityToken:
    """An issued access token and the application it belongs to."""

    value: str
    provider_tenant_id: str
    client_id: str
    expires_at: float


class IdentityProvider:
    """Registered (providerTenantId, clientId, clientSecret) triples and their tokens."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # providerTenantId -> clientId -> clientSecret
        self._apps: dict[str, dict[str, str]] = {}
        self._tokens: dict[str, IdentityToken] = {}

    def register(self, provider_tenant_id: str, client_id: str, client_secret: str) -> None:
        """Create (or re-key) an application registration."""
        with self._lock:
            self._apps.setdefault(provider_tenant_id, {})[client_id] = client_secret

    def request_token(
        self, provider_tenant_id: str, client_id: str, client_secret: str
    ) -> IdentityToken | IdentityError:
        """The client-credentials grant: a token, or the error Entra ID would give."""
        with self._lock:
            apps = self._apps.get(provider_tenant_id)
            if apps is None:
                return IdentityError(
                    "AADSTS90002",
                    f"Tenant '{provider_tenant_id}' not found.",
                    "provider",
                )
            expected = apps.get(client_id)
            if expected is None:
                return IdentityError(
                    "AADSTS700016",
                    f"Application with identifier '{client_id}' was not found in the directory.",
                    "credentials",
                )
            if not hmac.compare_digest(expected.encode(), client_secret.encode()):
                return IdentityError(
                    "AADSTS7000215", "Invalid client secret provided.", "credentials"
                )
            token = IdentityToken(
                value=secrets.token_urlsafe(32),
                provider_tenant_id=provider_tenant_id,
                client_id=client_id,
                expires_at=self._clock.now() + TOKEN_LIFETIME_S,
            )
            self._tokens[token.value] = token
            return token

    def check_token(self, value: str) -> IdentityToken | None:
        """The token if it was issued here and has not expired."""
        with self._lock:
            token = self._tokens.get(value)
        if token is None or token.expires_at <= self._clock.now():
            return None
        return token
