"""What the sandbox's HTTP server hands its application, and what it gets back.

The contract is `Application.dispatch(request) -> Reply | Awaitable[Reply]`:
answer synchronously when you can (plain GETs stay cheap), return a coroutine
when you must wait (latency, stalls, SMTP checks). A reply is either a whole
`Response` (`Response.reset()` drops the connection without an answer) or a
`Streamed` one, whose body a coroutine writes at its own pace: slow, huge or
endless bodies, for clients that must survive a hostile server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import field
from typing import Any, Protocol

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from reconciler.values import valueclass

Headers = Sequence[tuple[str, str]]


def _no_headers() -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict())


@valueclass
class Request:
    """A request whose body has been read in full.

    `headers` is case-insensitive and keeps repeated headers: `get(name)` is
    the first value, `getall(name)` every one, in the order sent.
    """

    method: str
    path: str
    query: str = ""
    headers: CIMultiDictProxy[str] = field(default_factory=_no_headers)
    body: bytes = b""
    # time.monotonic() when its head arrived: injected latency counts from
    # here, so time spent queued behind other requests is not added to it.
    received: float = field(default_factory=time.monotonic)


@valueclass
class Response:
    """A whole response; `drop` means: close the connection, answer nothing."""

    status: int
    body: bytes = b""
    headers: Headers = ()
    drop: bool = False

    @classmethod
    def json(cls, status: int, document: Any, headers: Headers = ()) -> Response:
        """A JSON document, compactly encoded."""
        body = json.dumps(document, separators=(",", ":")).encode()
        return cls(status, body, [("Content-Type", "application/json"), *headers])

    @classmethod
    def error(cls, status: int, code: str, title: str, headers: Headers = ()) -> Response:
        """The API's error shape: `{"errors": [{"code", "title"}]}`."""
        return cls.json(status, {"errors": [{"code": code, "title": title}]}, headers)

    @classmethod
    def reset(cls) -> Response:
        """No answer: the connection is reset (status 0 in the request log)."""
        return cls(0, drop=True)


BodyWriter = Callable[[web.StreamResponse], Awaitable[None]]


@valueclass
class Streamed:
    """A response whose head is sent at once and whose body `write` produces.

    `write` gets the prepared `aiohttp.web.StreamResponse` and calls its
    `write(chunk)` as often and as slowly as it likes; without a
    Content-Length header the body goes out chunked. When it returns, the
    body ends.
    """

    status: int
    write: BodyWriter
    headers: Headers = ()


Reply = Response | Streamed


class Application(Protocol):
    """What the server calls for each request."""

    def dispatch(self, request: Request) -> Reply | Awaitable[Reply]: ...
