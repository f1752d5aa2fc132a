"""Who is calling: API keys, OAuth client credentials and bearer tokens.

Every tenant accepts `Authorization: Bearer <key>` with its admin API key,
its non-admin API key, or an access token its own `/oauth/token` issued. A
token or key of another tenant is refused (401 AUTH-1), as are expired
tokens. The token endpoint takes the client-credentials grant as JSON or as
`application/x-www-form-urlencoded` (client id and secret in the body or in
HTTP Basic auth, RFC 6749 section 2.3.1).

Rate limits count per credential: per API key, or per OAuth client (all
tokens of one client share its limit, since real limits are per user).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import threading
from typing import Any
from urllib.parse import parse_qs

from reconciler.sandbox.clock import Clock, iso_timestamp
from reconciler.sandbox.messages import Request, Response
from reconciler.sandbox.tenants import SandboxTenant
from reconciler.values import valueclass

DEFAULT_TOKEN_LIFETIME_S = 21600.0
DEFAULT_SCOPE = "user_default"


@valueclass
class Principal:
    """An authenticated caller: its rate-limit identity and whether it is an admin."""

    credential: str
    admin: bool


@valueclass
class _Token:
    tenant: str
    client_id: str
    expires_at: float


@valueclass
class TokenRequest:
    """The fields of a token request, whatever its encoding."""

    grant_type: str
    client_id: str
    client_secret: str
    scope: str


class Authenticator:
    """Checks bearer credentials and runs the token endpoint."""

    def __init__(self, clock: Clock, token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S) -> None:
        self.token_lifetime_s = token_lifetime_s
        self._clock = clock
        self._lock = threading.Lock()
        # (tenant, token) -> token: a hostile tenant may issue a token that
        # another tenant was issued too (`hostile.SHORT_TOKEN`).
        self._tokens: dict[tuple[str, str], _Token] = {}

    def authenticate(self, tenant: SandboxTenant, authorization: str | None) -> Principal | None:
        """The caller behind an Authorization header, or None (401)."""
        scheme, _, credential = (authorization or "").partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return None
        if _same(credential, tenant.api_key):
            return Principal("api-key:admin", admin=True)
        if _same(credential, tenant.nonadmin_api_key):
            return Principal("api-key:user", admin=False)
        with self._lock:
            token = self._tokens.get((tenant.name, credential))
        if token is None:
            return None
        if token.expires_at <= self._clock.now():
            return None
        return Principal("oauth:" + token.client_id, admin=True)

    def issued(self) -> list[str]:
        """Every access token issued so far (for leak scans in tests)."""
        with self._lock:
            return list(dict.fromkeys(value for _, value in self._tokens))

    def token_response(
        self, tenant: SandboxTenant, request: TokenRequest, value: str | None = None
    ) -> Response:
        """The answer of POST /oauth/token to a parsed request (issuing `value`
        as the token, if given)."""
        if request.grant_type != "client_credentials":
            return Response.error(
                400, "OAUTH-2", "unsupported_grant_type: only client_credentials is supported"
            )
        known_id = _same(request.client_id, tenant.oauth_client_id)
        if not (known_id and _same(request.client_secret, tenant.oauth_client_secret)):
            return Response.error(401, "OAUTH-1", "invalid_client: client authentication failed")
        return Response.json(200, self.issue(tenant, request.scope or DEFAULT_SCOPE, value))

    def issue(self, tenant: SandboxTenant, scope: str, value: str | None = None) -> dict[str, Any]:
        """A new access token for the tenant's OAuth client (`value`, or a random one)."""
        if value is None:
            value = secrets.token_urlsafe(32)
        expires_at = self._clock.now() + self.token_lifetime_s
        with self._lock:
            self._prune()
            self._tokens[tenant.name, value] = _Token(
                tenant.name, tenant.oauth_client_id, expires_at
            )
        return {
            "access_token": value,
            "token_type": "bearer",
            "expires_in": int(self.token_lifetime_s),
            "expires_at": iso_timestamp(expires_at),
            "scope": scope,
        }

    def _prune(self) -> None:
        # Expired tokens are forgotten now and then, so long runs stay small.
        if len(self._tokens) % 1024 == 0:
            now = self._clock.now()
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}


def parse_token_request(request: Request) -> TokenRequest | Response:
    """Read a token request from JSON or a form body (plus HTTP Basic auth)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, Any]
    try:
        if content_type == "application/json":
            document = json.loads(request.body or b"{}")
            if not isinstance(document, dict):
                raise ValueError("not an object")
            fields = document
        else:
            form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
            fields = {name: values[0] for name, values in form.items()}
    except (ValueError, UnicodeDecodeError):
        return Response.error(400, "OAUTH-3", "invalid_request: malformed token request body")
    basic = _basic_credentials(request.headers.get("authorization", ""))
    if basic is not None:
        fields.setdefault("client_id", basic[0])
        fields.setdefault("client_secret", basic[1])
    values = {k: fields.get(k) for k in ("grant_type", "client_id", "client_secret", "scope")}
    if not all(isinstance(v, str) for v in values.values() if v is not None):
        return Response.error(400, "OAUTH-3", "invalid_request: token request fields are strings")
    if not values["grant_type"] or not values["client_id"]:
        return Response.error(
            400, "OAUTH-3", "invalid_request: grant_type and client_id are required"
        )
    return TokenRequest(
        grant_type=str(values["grant_type"]),
        client_id=str(values["client_id"]),
        client_secret=str(values["client_secret"] or ""),
        scope=str(values["scope"] or ""),
    )


def _same(given: str, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str (a header can hold anything).
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret
