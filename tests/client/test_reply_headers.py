"""A response's headers read as httpx reads them (`reply.Headers`): the client
gives up httpx.Headers for its cost, not for what a header says."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from reconciler.client.reply import Headers

NAMES = ["Content-Type", "content-length", "Retry-After", "Location", "X-Odd", "CONTENT-ENCODING"]
# Values as a server may send them: ASCII, UTF-8, or bytes that are neither.
VALUES = st.one_of(
    st.binary(max_size=12),
    st.text(max_size=8).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.text(alphabet="abc 0123456789,;=/", max_size=12).map(str.encode),
)
RAW = st.lists(st.tuples(st.sampled_from(NAMES).map(str.encode), VALUES), max_size=8)


@given(RAW, st.sampled_from([*NAMES, "absent", "LOCATION"]))
def test_a_header_reads_as_httpx_reads_it(raw: list[tuple[bytes, bytes]], name: str) -> None:
    ours, theirs = Headers(raw), httpx.Headers(raw)
    assert ours.get(name) == theirs.get(name)
    assert ours.get(name, "") == theirs.get(name, "")


def test_repeated_headers_are_joined_and_the_encoding_is_one_for_all() -> None:
    raw = [
        (b"Retry-After", b"5"),
        (b"X-Name", "\u00e9t\u00e9".encode()),
        (b"retry-after", b"10"),
    ]
    assert Headers(raw).get("retry-after") == "5, 10"
    assert Headers(raw).get("x-name") == "\u00e9t\u00e9"  # all of it is UTF-8
    latin = [*raw, (b"X-Other", b"\xe9")]  # not UTF-8: every value is read as ISO-8859-1
    assert Headers(latin).get("x-name") == "\u00c3\u00a9t\u00c3\u00a9"
    assert Headers(latin).get("x-name") == httpx.Headers(latin).get("x-name")
