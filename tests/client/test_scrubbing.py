"""Server text enters the client through the session's scrubber: a server that
echoes what it was sent, in any spelling, gets none of it into a message,
a verify result or a live value."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from reconciler.client import ApiKeyCredentials, ApiSession, ClientOptions, OAuthCredentials
from reconciler.errors import ApiError, AuthError
from reconciler.model import DesiredEmail, Provider
from reconciler.scrub import Scrubber
from reconciler.secrets import Secret

BASE = "https://acme.example.com"
API_KEY = "key-0123456789abcdef0123"
PASSWORD = 'p@ss w0rd/"with+specials"'
CLIENT_ID = "client-id-from-a-reference-42"
TOKEN = "access-token-0123456789abcdef"


def spellings(*values: str) -> str:
    """Every value, spelt as a hostile server might."""
    parts = []
    for value in values:
        raw = value.encode()
        parts += [
            value,
            quote(value, safe=""),
            base64.b64encode(b"x" + raw + b"yz").decode(),
            json.dumps(value)[1:-1],
            " ".join(value),
        ]
    return " | ".join(parts)


def run(handler: Callable[[httpx.Request], httpx.Response], work: Any, **kw: Any) -> Any:
    async def main() -> Any:
        options = ClientOptions(transport=httpx.MockTransport(handler), max_retries=0, pace=False)
        async with ApiSession(options, **kw) as session:
            return await work(session)

    return asyncio.run(main())


def assert_clean(text: str, *values: str) -> None:
    compact = "".join(text.split())
    for value in values:
        assert value not in text and "".join(value.split()) not in compact, value
        assert quote(value, safe="") not in text and json.dumps(value)[1:-1] not in text


def test_a_rejected_put_echoing_the_password_and_key_names_neither() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        title = "refused: " + spellings(PASSWORD, API_KEY)
        return httpx.Response(400, json={"errors": [{"code": spellings(PASSWORD), "title": title}]})

    async def work(session: ApiSession) -> str:
        client = session.tenant("acme", BASE, ApiKeyCredentials(Secret(API_KEY)))
        email = DesiredEmail.of(Provider.BASIC_AUTH, {"serverAddress": "smtp.example.com"})
        with pytest.raises(ApiError) as caught:
            await client.put_email_config(email, Secret(PASSWORD))
        return str(caught.value)

    message = run(handler, work)
    assert "(sensitive value)" in message
    assert_clean(message, PASSWORD, API_KEY)


def test_verify_messages_and_live_values_are_scrubbed() -> None:
    echo = spellings(PASSWORD, API_KEY)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"success": False, "message": echo})
        config = {"serverAddress": "smtp.example.com " + echo, "username": echo}
        document = {
            "serviceProvider": "BasicAuth",
            "providerConfig": config,
            "errorCode": echo,
            "status": {"statusCode": 500, "statusReason": echo},
        }
        return httpx.Response(200, json=document)

    async def work(session: ApiSession) -> str:
        client = session.tenant("acme", BASE, ApiKeyCredentials(Secret(API_KEY)))
        verify = await client.verify_connection()
        live = await client.read_live()
        return repr((verify, live))

    scrubber = Scrubber([PASSWORD])  # the resolver's, which knows the e-mail secret
    assert_clean(run(handler, work, scrubber=scrubber), PASSWORD, API_KEY)


def test_an_oauth_client_id_from_a_reference_and_the_token_are_scrubbed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": TOKEN, "expires_in": 3600})
        return httpx.Response(
            400, json={"errors": [{"code": "X", "title": spellings(CLIENT_ID, TOKEN)}]}
        )

    async def work(session: ApiSession) -> str:
        credentials = OAuthCredentials(CLIENT_ID, Secret("client-secret-0123456789"))
        with pytest.raises(ApiError) as caught:
            await session.tenant("acme", BASE, credentials).get_email_config()
        return str(caught.value)

    # A client id written as a reference is resolved, so the resolver's scrubber knows it.
    assert_clean(run(handler, work, scrubber=Scrubber([CLIENT_ID])), CLIENT_ID, TOKEN)


def test_a_refused_token_request_echoing_the_client_names_it_nowhere() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {
            "error": "invalid_client",
            "error_description": spellings(CLIENT_ID, "s3cret-value-xyz"),
        }
        return httpx.Response(401, json=body)

    async def work(session: ApiSession) -> str:
        credentials = OAuthCredentials(CLIENT_ID, Secret("s3cret-value-xyz"))
        with pytest.raises(AuthError) as caught:
            await session.tenant("acme", BASE, credentials).get_email_config()
        return str(caught.value)

    message = run(handler, work, scrubber=Scrubber([CLIENT_ID]))
    assert_clean(message, CLIENT_ID, "s3cret-value-xyz")


def test_without_the_e_mail_secrets_free_text_is_reduced() -> None:
    stored = "Stored9Password8Nobody7Resolved"

    def handler(request: httpx.Request) -> httpx.Response:
        reason = f"login failed for {stored}\x1b[2J " + "x" * 400
        return httpx.Response(200, json={"isValid": False, "status": {"statusReason": reason}})

    async def work(session: ApiSession) -> Any:
        return await session.tenant("acme", BASE, ApiKeyCredentials(Secret(API_KEY))).read_live()

    live = run(handler, work, reduce_free_text=True)
    reason = live.health.status_reason
    assert stored not in reason and "\x1b" not in reason and len(reason) <= 160


def test_a_token_is_scrubbed_from_its_own_server_only() -> None:
    # A hostile token endpoint hands out, as tokens, values of the configuration
    # and of another tenant: they must not be redacted anywhere but in its own text.
    hostile = {"https://a.example.com": "smtp.example.com", "https://b.example.com": "qlikcloud"}

    def handler(request: httpx.Request) -> httpx.Response:
        server = f"{request.url.scheme}://{request.url.host}"
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": hostile[server], "expires_in": 60})
        config = {"serverAddress": "smtp.example.com", "username": "qlikcloud"}
        document = {"serviceProvider": "BasicAuth", "providerConfig": config}
        return httpx.Response(200, json=document)

    async def work(session: ApiSession) -> tuple[Any, ...]:
        credentials = OAuthCredentials(CLIENT_ID, Secret("client-secret-0123456789"))
        a = await session.tenant("a", "https://a.example.com", credentials).read_live()
        b = await session.tenant("b", "https://b.example.com", credentials).read_live()
        text = "sent to smtp.example.com as qlikcloud"
        return a, b, session.scrubber.scrub(text), session.scrubber.scrub_logs(text)

    a, b, elsewhere, logged = run(handler, work)
    assert elsewhere == "sent to smtp.example.com as qlikcloud"
    # Log records and tracebacks, which a server's text may reach unscrubbed
    # through an exception's message, lose every token.
    assert logged == "sent to (sensitive value) as (sensitive value)"
    a_values, b_values = a.email.as_dict(), b.email.as_dict()
    # Each server's own token is gone from its own answer, the other one's is not.
    assert a_values == {"serverAddress": "(sensitive value)", "username": "qlikcloud"}
    assert b_values == {"serverAddress": "smtp.example.com", "username": "(sensitive value)"}


@pytest.mark.parametrize(
    "token", ["two words", "line\nbreak", "tab\there", "a=b", "é-accent", "x" * 16385]
)
def test_a_token_that_is_not_a_bearer_token_is_refused_unquoted(token: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": token, "expires_in": 60})

    async def work(session: ApiSession) -> str:
        credentials = OAuthCredentials(CLIENT_ID, Secret("client-secret-0123456789"))
        with pytest.raises(ApiError) as caught:
            await session.tenant("acme", BASE, credentials).get_email_config()
        return str(caught.value)

    message = run(handler, work)
    assert "is not a bearer token" in message and token[:5] not in message
