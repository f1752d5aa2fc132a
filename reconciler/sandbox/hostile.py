"""Hostile answers: a tenant server that tries to make its client leak a secret,
forge output, or choke. Per tenant, with `Faults.set(hostile=(...))`:

    echo-secret  every secret of the request (PUT `emailPassword`/`clientSecret`,
                 OAuth `client_id`/`client_secret`, the bearer token), and every
                 one the tenant was sent before (since its faults were last
                 set), in every string of the answer, spelt every way in
                 ECHO_FORMS; GET answers gain an `errorCode` and a
                 `status.statusReason`, token errors become OAuth's
                 `{error, error_description}`
    payloads     PAYLOADS (workflow commands, Markdown, HTML, mentions, ANSI
                 and OSC sequences, bidirectional controls) in every string
    messages-only  with the two above: only the free-text fields (FREE_TEXT)
                 are spiked, so the configuration reads back as written and
                 apply goes on to the test e-mail
    huge         a body that declares 300 MB and streams until the client leaves
    endless      a chunked body that never ends
    slow         a JSON body at one byte a second
    deep         JSON nested DEEP_LEVELS deep
    huge-writes  PUT and DELETE are carried out, then a success answer is
                 replaced by `huge`'s body (every other request is served
                 as usual): the change is made, and its answer is unreadable
    stacked-bomb  `Content-Encoding: gzip, gzip`: a few kilobytes that inflate
                 to BOMB_BYTES of zeros (4 GiB)
    retry-after-forever  503 with `Retry-After: 30` to every request
    short-token  the token endpoint issues SHORT_TOKEN (the SMTP host every
                 sandbox tenant is configured with) as the access token, and
                 accepts it: a client that scrubbed every token from all its
                 output would blank that host out of every tenant's lines
    invisible    INVISIBLE_NAME (a senderName full of invisible characters:
                 soft hyphen, line separator then a workflow command,
                 bidirectional controls, zero-width and tag characters) is the
                 live senderName of every GET answer

The text kinds rewrite the real answer, and a send-test-email answer says the
message was not sent; the body kinds replace it (the
request never reaches the handlers). The spellings and payloads start at a
different one on every answer, so that a client that keeps only the first
characters of a text still meets every one of them over a few requests.
Strings the client needs to carry on (`access_token`, `token_type`,
`serviceProvider`) are left alone.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
import itertools
import json
import struct
import unicodedata
import zlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

from aiohttp import web

from reconciler.sandbox.messages import Reply, Request, Response, Streamed

TEXT_KINDS = ("echo-secret", "payloads", "messages-only")
BODY_KINDS = ("huge", "endless", "slow", "deep", "stacked-bomb", "retry-after-forever")
WRITE_KINDS = ("huge-writes",)
VALUE_KINDS = ("short-token", "invisible")
KINDS = TEXT_KINDS + BODY_KINDS + WRITE_KINDS + VALUE_KINDS
SHORT_TOKEN = "127.0.0.1"
INVISIBLE_NAME = (
    "Acme\xadSupport\u2028::warning::forged\u2029\u202eevil\u202c\u2066x\u2069"
    "\u200b\u200d\u2060\ufeff\U000e0001\U000e0061\U000e007f\u180e\u061c"
)

PAYLOADS = (
    "::error::forged annotation",
    "::stop-commands::t0ken",
    "::add-mask::x",
    "##[error]old-style command",
    "``````",
    "<img src=x onerror=alert(1)>",
    "@octocat",
    "<!--",
    "[click](javascript:alert(1))",
    "\x1b]52;c;aGVsbG8=\x07",
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "\x1b[2J\x1b[H",
    "\u202eevil\u202c \u2066x\u2069",
    "\r::warning::after a carriage return",
    "\u2028::warning::after a line separator\u2029",
    "soft\xadhyphen, tags\U000e0041\U000e007f, joiner\u2060",
)
HUGE_BYTES = 300 * 1024 * 1024
CHUNK = b"x" * 65536
DEEP_LEVELS = 100_000
BOMB_BYTES = 4 << 30
RETRY_AFTER_S = 30
_UNTOUCHED = frozenset({"access_token", "token_type", "serviceProvider"})
FREE_TEXT = frozenset(
    {"message", "title", "code", "errorCode", "statusReason", "error", "error_description"}
)
_turns = itertools.count()


def echo_forms(secret: str) -> list[str]:
    """`secret` spelt every way a server might echo it."""
    raw = secret.encode()
    half = len(secret) // 2
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        base64.b64encode(b"k" + raw + b"tail").decode(),  # inside a larger blob
        base64.b64encode(b"ke" + raw + b"tail!").decode(),
        json.dumps(secret)[1:-1],
        json.dumps({"emailPassword": secret}),
        "".join(f"\\u{ord(c):04x}" for c in secret),
        " ".join(secret),
        secret[:half] + "\n  " + secret[half:],
        f"first half {secret[:half]} and later the rest: {secret[half:]}",
        # Spellings only a normalising scrubber finds (for secrets of 8
        # characters or more): escapes of either case, some characters only,
        # HTML character references, case, Unicode forms, invisible characters.
        "".join(f"\\u{ord(c):04X}" if i % 3 == 0 else c for i, c in enumerate(secret)),
        "".join(f"&#{ord(c)};" if i % 2 else f"&#x{ord(c):X};" for i, c in enumerate(secret)),
        secret.upper(),
        secret.lower(),
        unicodedata.normalize("NFD", secret),
        "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in secret),  # fullwidth
        "\u200b".join(secret),
        "\xad".join(secret),
        raw.hex().upper(),
    ]


def request_secrets(request: Request) -> list[str]:
    """The secrets a request carries: bearer token, PUT secret, OAuth client."""
    found = []
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        found.append(credential.strip())
    fields: dict[str, Any] = {}
    try:
        document = json.loads(request.body or b"{}")
        if isinstance(document, dict):
            fields = document
    except ValueError:
        form = parse_qs(request.body.decode("utf-8", "replace"))
        fields = {name: values[0] for name, values in form.items()}
    config = fields.get("providerConfig")
    if isinstance(config, dict):
        fields = {**fields, **config}
    for name in ("emailPassword", "clientSecret", "client_id", "client_secret"):
        value = fields.get(name)
        if isinstance(value, str) and value:
            found.append(value)
    return found


def hostile_text(secrets: list[str], kinds: tuple[str, ...]) -> str:
    """What is added to every string of an answer (rotated on every call)."""
    parts: list[str] = []
    if "echo-secret" in kinds:
        parts += [form for secret in secrets for form in echo_forms(secret)]
    if "payloads" in kinds:
        parts += PAYLOADS
    if not parts:
        return ""
    start = next(_turns) % len(parts)
    return "\n" + "\n".join(parts[start:] + parts[:start])


def rewrite(
    response: Response,
    text: str,
    *,
    operation: str,
    messages_only: bool = False,
    invisible: bool = False,
) -> Response:
    """`response` with `text` added to every string of its JSON body (with
    `messages_only`, to the FREE_TEXT fields only); with `invisible`, a GET
    answer's senderName is INVISIBLE_NAME."""
    if not (text or invisible) or not response.body:
        return response
    try:
        document = json.loads(response.body)
    except ValueError:
        return response
    if isinstance(document, dict):
        if operation == "token" and response.status >= 400:
            document = {"error": "invalid_client", "error_description": "refused"}
        config = document.get("providerConfig")
        if invisible and isinstance(config, dict):
            config["senderName"] = INVISIBLE_NAME
        if text and "isValid" in document:  # a GET answer: give it every text field
            document.setdefault("errorCode", "HOSTILE-1")
            status = document.setdefault("status", {})
            if isinstance(status, dict):
                status.setdefault("statusCode", 500)
                status.setdefault("statusReason", "hostile")
        if operation == "send_test_email" and "success" in document:
            document["success"] = False
    headers = [h for h in response.headers if h[0].lower() != "content-type"]
    spiked = _spiked(document, text, None, FREE_TEXT if messages_only else None)
    return Response.json(response.status, spiked, headers)


def _spiked(value: Any, text: str, key: str | None, only: frozenset[str] | None) -> Any:
    if isinstance(value, str):
        if key in _UNTOUCHED or (only is not None and key not in only):
            return value
        return value + text
    if isinstance(value, dict):
        return {k: _spiked(v, text, k, only) for k, v in value.items()}
    if isinstance(value, list):
        return [_spiked(item, text, key, only) for item in value]
    return value


async def rewrite_later(
    pending: Awaitable[Response],
    text: str,
    *,
    operation: str,
    messages_only: bool = False,
    invisible: bool = False,
) -> Response:
    return rewrite(
        await pending, text, operation=operation, messages_only=messages_only, invisible=invisible
    )


def body_reply(kind: str) -> Reply:
    """The answer of a body kind (`huge`, `endless`, `slow`, `deep`)."""
    json_type = ("Content-Type", "application/json")
    if kind == "deep":
        body = b"[" * DEEP_LEVELS + b"]" * DEEP_LEVELS
        return Response(200, body, [json_type])
    if kind == "stacked-bomb":
        return Streamed(200, _bomb, [json_type, ("Content-Encoding", "gzip, gzip")])
    if kind == "retry-after-forever":
        title = "Service unavailable: retry later"
        return Response.error(503, "HOSTILE-503", title, [("Retry-After", str(RETRY_AFTER_S))])
    if kind == "huge":
        return Streamed(200, _repeat(HUGE_BYTES), [json_type, ("Content-Length", str(HUGE_BYTES))])
    if kind == "endless":
        return Streamed(200, _repeat(None), [json_type])
    return Streamed(200, _trickle(b'{"isValid": false, "errorCode": "' + b"z" * 3600), [json_type])


def _repeat(total: int | None) -> Callable[[web.StreamResponse], Awaitable[None]]:
    """Write CHUNKs until `total` bytes (None: forever) or the client leaves."""

    async def write(response: web.StreamResponse) -> None:
        sent = 0
        while total is None or sent < total:
            chunk = CHUNK if total is None else CHUNK[: total - sent]
            await response.write(chunk)
            sent += len(chunk)
            await asyncio.sleep(0)  # let the sandbox serve the other tenants

    return write


async def _bomb(response: web.StreamResponse) -> None:
    await response.write(stacked_bomb())


@functools.cache
def stacked_bomb() -> bytes:
    """BOMB_BYTES of zeros, gzipped twice (a few kilobytes)."""
    return gzip.compress(gzipped_zeros(BOMB_BYTES), 9)


def gzipped_zeros(total: int) -> bytes:
    """`total` zero bytes (whole MiB) as a gzip stream, made of one compressed MiB
    repeated: a full flush resets the compressor, so every MiB compresses the
    same. The trailer's checksum is left zero (computing it means reading all
    of it): a client that gets that far has already failed."""
    segment = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(segment) + compressor.flush(zlib.Z_FULL_FLUSH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = compressor.flush() + struct.pack("<II", 0, total & 0xFFFFFFFF)
    return header + block * (total // len(segment)) + trailer


def _trickle(body: bytes) -> Callable[[web.StreamResponse], Awaitable[None]]:
    """Write `body` one byte a second."""

    async def write(response: web.StreamResponse) -> None:
        for index in range(len(body)):
            await response.write(body[index : index + 1])
            await asyncio.sleep(1.0)

    return write
