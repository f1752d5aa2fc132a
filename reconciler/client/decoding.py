"""Content-Encoding undone within the size cap, a bounded step at a time.

httpx's decoders inflate a whole chunk through every layer before anyone can
count the result: `Content-Encoding: gzip, gzip` turns a few kilobytes into
gigabytes in one call that holds the event loop. Here every layer inflates
with zlib's `max_length` (at most `STEP` bytes per call, the rest of its input
kept in `unconsumed_tail`), and every layer's output, not only the last one's,
counts against the cap, as do the bytes off the wire. A well-formed body's
inner layers are no larger than the body itself, so a legitimate answer is
never refused for this; and the work one response can cause is at most
`MAX_LAYERS` times the cap, whatever the server sends.

Accepted: `gzip` (`x-gzip`) and `deflate` (zlib-wrapped or raw, as browsers
accept it), at most `MAX_LAYERS` of them; `identity` is ignored. Anything else
(`br`, `zstd`, `compress`, ...) is refused: the client does not offer it
(`ACCEPT_ENCODING`), and its decoder could not be bounded the same way.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

import httpx

ACCEPT_ENCODING = "gzip, deflate"
MAX_LAYERS = 2  # the API sends one; a second is tolerated, more is not an API
STEP = 64 * 1024  # bytes one layer may produce per zlib call
_SHOWN = 40  # characters of an unknown encoding's name kept in the message


class BudgetExceeded(Exception):
    """A layer's output (or the raw body) went past the cap."""


class _Layer:
    """One encoding undone, its output bounded per call and in total."""

    def __init__(self, encoding: str, budget: int) -> None:
        self._deflate = encoding == "deflate"
        self._inflater = zlib.decompressobj(
            zlib.MAX_WBITS if self._deflate else zlib.MAX_WBITS | 16
        )
        self._first = True
        self._left = budget

    def feed(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        for data in pieces:
            yield from self._inflate(data)

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while not self._inflater.eof:  # after its end, what follows is ignored (as httpx does)
            out = self._decompress(data)
            data = self._inflater.unconsumed_tail
            if out:
                self._left -= len(out)
                if self._left < 0:
                    raise BudgetExceeded
                yield out
            # A full step may leave output inside zlib even with no input left.
            if not data and len(out) < STEP:
                return

    def _decompress(self, data: bytes) -> bytes:
        first, self._first = self._first, False
        try:
            return self._inflater.decompress(data, STEP)
        except zlib.error as exc:
            if first and self._deflate:  # raw deflate, without the zlib wrapper
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                return self._decompress(data)
            raise httpx.DecodingError(f"the body is not valid {self.name}: {exc}") from None

    @property
    def name(self) -> str:
        return "deflate" if self._deflate else "gzip"

    def check_complete(self) -> None:
        """DecodingError when the body ended in the middle of this layer's stream."""
        if not self._first and not self._inflater.eof:
            raise httpx.DecodingError(f"the {self.name} stream of the body is cut short")


class Decoder:
    """Undoes a response's Content-Encoding, raising BudgetExceeded as soon as
    the raw body or any layer's output passes `limit` bytes."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        names = [n.strip().lower() for n in content_encoding.split(",")]
        names = [n for n in names if n and n != "identity"]
        for name in names:
            if name not in ("gzip", "x-gzip", "deflate"):
                raise httpx.DecodingError(
                    f"the response is encoded with {name[:_SHOWN]!r}, which this tool does "
                    f"not accept (it asks for {ACCEPT_ENCODING})"
                )
        if len(names) > MAX_LAYERS:
            raise httpx.DecodingError(
                f"the response has {len(names)} layers of Content-Encoding; "
                f"this tool undoes at most {MAX_LAYERS}"
            )
        # Applied in the order listed, so undone from the last one.
        self._layers = [_Layer("deflate" if n == "deflate" else "gzip", limit) for n in names]
        self._raw_left = limit

    def decode(self, chunk: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next raw `chunk`, each at most STEP bytes."""
        self._raw_left -= len(chunk)
        if self._raw_left < 0:
            raise BudgetExceeded
        pieces: Iterable[bytes] = (chunk,)
        for layer in reversed(self._layers):
            pieces = layer.feed(pieces)
        return iter(pieces)

    def finish(self) -> None:
        """DecodingError when the body ended before an encoded stream did."""
        for layer in self._layers:
            layer.check_complete()
