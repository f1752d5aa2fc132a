"""A complete response, read within bounds, and its JSON parsed within bounds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Sequence
from typing import Any, overload

import httpx

from reconciler.client.decoding import BudgetExceeded, Decoder
from reconciler.values import valueclass

# The API's bodies nest three or four levels; more than this is not the API.
MAX_JSON_DEPTH = 32


class BodyTooLarge(Exception):
    """A response body went past `ClientOptions.max_response_bytes` (not retried)."""

    def __init__(self, status: int, limit: int) -> None:
        super().__init__(f"response body over {limit} bytes")
        self.status = status
        self.limit = limit


class JsonTooDeep(ValueError):
    """A JSON body nests deeper than `MAX_JSON_DEPTH`."""


class WireBody(httpx.AsyncByteStream):
    """A response body as it came off the wire (before any Content-Encoding is
    undone), read once (the transport's streams are)."""


class Headers:
    """A response's headers as they came off the wire (name and value bytes), read
    as httpx.Headers reads them: a name's values joined by ", ", decoded as
    ASCII, else UTF-8, else ISO-8859-1, one encoding for all (tests/client/
    test_reply_headers.py holds them to httpx's). Made without a pass over the
    headers, which httpx.Headers makes: a response is asked for two or three
    of them (bench/NOTES.md, "The response read by the transport")."""

    __slots__ = ("_encoding", "_raw")

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._encoding: str | None = None

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The values of header `name` (any case), joined by ", "; `default` when absent."""
        # ASCII is the same bytes, and the same text, in all three encodings: the
        # encoding is chosen (a pass over every header) only for other bytes.
        encoding = "ascii" if name.isascii() else self._encoding or self._choose_encoding()
        key = name.lower().encode(encoding)
        values = [value for raw_key, value in self._raw if raw_key.lower() == key]
        if not values:
            return default
        joined = b", ".join(values)
        if not joined.isascii():
            encoding = self._encoding or self._choose_encoding()
        return joined.decode(encoding)

    def _choose_encoding(self) -> str:
        raw = self._raw
        if all(key.isascii() and value.isascii() for key, value in raw):
            encoding = "ascii"
        else:
            try:
                for key, value in raw:
                    key.decode("utf-8")
                    value.decode("utf-8")
                encoding = "utf-8"
            except UnicodeDecodeError:
                encoding = "iso-8859-1"  # any byte is a character
        self._encoding = encoding
        return encoding


@valueclass
class Reply:
    """A response with its whole body (at most `max_response_bytes`, decoded)."""

    status_code: int
    headers: Headers
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        """The body as text, in the charset its Content-Type names (UTF-8 by default)."""
        charset = _charset(self.headers.get("content-type", ""))
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON or nests too deeply."""
        return parse_json(self.content)


async def read_reply(response: httpx.Response, limit: int) -> Reply:
    """The whole response of an httpx transport (`read_body`); the stream is closed."""
    # The bytes as they came off the wire, straight from the transport's stream
    # (bench/NOTES.md, "Client transport"), never through httpx's decoders.
    raw = response.stream
    try:
        if not isinstance(raw, httpx.AsyncByteStream):
            raise TypeError("the transport of an async client gave a sync stream")
        headers = Headers(response.headers.raw)
        content = await read_body(response.status_code, headers, raw, limit)
    finally:
        await response.aclose()
    return Reply(response.status_code, headers, content)


async def read_body(status: int, headers: Headers, raw: AsyncIterable[bytes], limit: int) -> bytes:
    """The whole (decoded) body of a response, read off `raw` as it came off the
    wire; BodyTooLarge as soon as it is known to exceed `limit` bytes, on the
    wire or decoded, without reading or decoding the rest (`decoding`);
    httpx.DecodingError for an encoding that is not accepted or not valid."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(status, limit)
    encoding = headers.get("content-encoding")
    if encoding is None:
        return await _read_plain(raw, status, limit)
    decoder = Decoder(encoding, limit)
    chunks: list[bytes] = []
    try:
        async for chunk in raw:
            chunks.extend(decoder.decode(chunk))
    except BudgetExceeded:
        raise BodyTooLarge(status, limit) from None
    decoder.finish()
    return b"".join(chunks)


async def _read_plain(raw: AsyncIterable[bytes], status: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in raw:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(status, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(content: bytes) -> Any:
    """`json.loads`, refusing more than MAX_JSON_DEPTH levels of nesting (JsonTooDeep)
    instead of raising RecursionError, here or in whatever walks the value later."""
    too_deep = JsonTooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(content)
    except RecursionError:
        raise too_deep from None
    # Fewer brackets than the limit cannot nest deeper: the usual body is not walked.
    if content.count(b"[") + content.count(b"{") > MAX_JSON_DEPTH and _too_deep(value):
        raise too_deep
    return value


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in item)
    return False


def _charset(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"
