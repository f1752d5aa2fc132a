"""`decoding`: Content-Encoding undone layer by layer, a bounded step at a time,
every layer's output within the cap."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest

from reconciler.client.decoding import MAX_LAYERS, STEP, BudgetExceeded, Decoder
from reconciler.sandbox.hostile import gzipped_zeros

BODY = json.dumps({"isValid": False, "padding": "x" * 200_000, "n": list(range(5000))}).encode()


def deflate(data: bytes) -> bytes:
    return zlib.compress(data)


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS = {"gzip": gzip.compress, "x-gzip": gzip.compress, "deflate": deflate}


def encoded(data: bytes, names: list[str]) -> bytes:
    """`data` with `names` applied in order, as `Content-Encoding: a, b` says."""
    for name in names:
        data = ENCODERS[name](data)
    return data


def decode_all(header: str, wire: bytes, limit: int = 1 << 20, chunk: int = 16384) -> bytes:
    decoder = Decoder(header, limit)
    pieces = []
    for start in range(0, len(wire), chunk):
        for piece in decoder.decode(wire[start : start + chunk]):
            assert len(piece) <= STEP
            pieces.append(piece)
    decoder.finish()
    return b"".join(pieces)


@pytest.mark.parametrize(
    "names",
    [
        ["gzip"],
        ["deflate"],
        ["x-gzip"],
        ["gzip", "gzip"],
        ["gzip", "deflate"],
        ["deflate", "gzip"],
        ["deflate", "deflate"],
    ],
)
def test_one_or_two_layers_of_gzip_and_deflate_are_undone(names: list[str]) -> None:
    assert decode_all(", ".join(names), encoded(BODY, names)) == BODY
    # one byte at a time: the layers carry their state across chunks
    small = BODY[:3000]
    assert decode_all(", ".join(names), encoded(small, names), chunk=1) == small


def test_raw_deflate_and_identity_are_accepted() -> None:
    assert decode_all("deflate", raw_deflate(BODY)) == BODY
    assert decode_all("identity, gzip", gzip.compress(BODY)) == BODY


def test_a_stacked_bomb_stops_at_the_cap_after_a_bounded_amount_of_work() -> None:
    inner = gzipped_zeros(256 << 20)  # 256 MiB of zeros, gzipped twice: a few kilobytes
    bomb = gzip.compress(inner)
    assert len(bomb) < 4096
    decoder = Decoder("gzip, gzip", 512 * 1024)
    produced = 0
    with pytest.raises(BudgetExceeded):
        for piece in decoder.decode(bomb):
            assert len(piece) <= STEP
            produced += len(piece)
    assert produced <= 512 * 1024


def test_an_inner_layer_larger_than_the_cap_is_refused_even_if_it_decodes_to_little() -> None:
    # 1 MB of empty stored deflate blocks: the outer layer decodes to 1 MB,
    # the inner to nothing. Without a budget per layer, all of it would be
    # worked through, whatever its size.
    inner = b"\x78\x9c" + b"\x00\x00\x00\xff\xff" * 200_000  # a zlib header, empty blocks
    assert len(inner) > 512 * 1024
    decoder = Decoder("deflate, gzip", 512 * 1024)
    with pytest.raises(BudgetExceeded):
        list(decoder.decode(gzip.compress(inner)))


def test_raw_bytes_over_the_cap_are_refused() -> None:
    decoder = Decoder("gzip", 1000)
    with pytest.raises(BudgetExceeded):
        list(decoder.decode(b"\x1f\x8b" + bytes(2000)))


@pytest.mark.parametrize("header", ["br", "zstd", "gzip, br", "compress", "x" * 500])
def test_an_encoding_not_offered_is_refused(header: str) -> None:
    with pytest.raises(httpx.DecodingError, match="which this tool does not accept") as caught:
        Decoder(header, 1000)
    assert len(str(caught.value)) < 200  # the server's text is cut


def test_more_layers_than_max_layers_are_refused() -> None:
    header = ", ".join(["gzip"] * (MAX_LAYERS + 1))
    with pytest.raises(httpx.DecodingError, match=f"at most {MAX_LAYERS}"):
        Decoder(header, 1000)


def test_a_stream_cut_short_or_corrupt_is_a_decoding_error() -> None:
    wire = gzip.compress(BODY)
    with pytest.raises(httpx.DecodingError, match="cut short"):
        decode_all("gzip", wire[: len(wire) // 2])
    with pytest.raises(httpx.DecodingError, match="not valid gzip"):
        decode_all("gzip", b"\x1f\x8b\x08\x00" + b"\xff" * 100)
