"""`urls.split_url` reads a URL as urlsplit and its properties read it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.urls import split_url

PIECES = st.sampled_from(
    [
        "https://",
        "http://",
        "ftp:",
        "//",
        "user:pw@",
        "[::1]",
        "[::1",
        "Host.Example",
        "127.0.0.1",
        ":",
        ":443",
        ":0",
        ":65536",
        ":-1",
        ":x",
        "/path/",
        "?q=1",
        "#f",
        "%41",
        " ",
        "\u00e9",
    ]
)


@given(st.lists(PIECES, max_size=6).map("".join))
def test_a_url_splits_as_urlsplit_splits_it(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        with pytest.raises(ValueError) as raised:
            split_url(url)
        assert str(raised.value) == str(exc)
        return
    split = split_url(url)
    assert (split.parts, split.hostname) == (parts, parts.hostname)
    try:
        port = parts.port
    except ValueError as exc:
        with pytest.raises(ValueError) as raised:
            split.checked_port()
        assert str(raised.value) == str(exc)
    else:
        assert split.checked_port() == split.port == port
