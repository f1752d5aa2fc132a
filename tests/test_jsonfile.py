"""`jsonfile`: a JSON file is bounded in size, depth and number length before
it is parsed, and every scan stays linear whatever the file holds."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler import jsonfile
from reconciler.jsonfile import MAX_DEPTH, MAX_NUMBER, JsonRefused, parse_bounded, read_json


def test_an_ordinary_document_is_parsed_as_json_loads_would() -> None:
    document = {
        "kind": "qlik-email/plan",
        "tenants": [{"name": 'a"[[[{', "port": 587, "ratio": -1.5e-3, "ok": True}],
        "text": 'brackets [[[[ and digits 12345678901234567890 in strings \\" count not',
        "null": None,
    }
    data = json.dumps(document, indent=2).encode()
    assert parse_bounded(data) == document


def arrays(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def objects(levels: int) -> bytes:
    return b'{"a":' * levels + b"0" + b"}" * levels


@pytest.mark.parametrize("nested", [arrays, objects])
def test_nesting_up_to_the_limit_is_parsed_and_one_more_level_is_refused(
    nested: Callable[[int], bytes],
) -> None:
    parse_bounded(nested(MAX_DEPTH))
    for levels in (MAX_DEPTH + 1, 100_000):
        with pytest.raises(JsonRefused, match=f"nested deeper than {MAX_DEPTH} levels"):
            parse_bounded(nested(levels))


def test_openers_never_closed_are_refused_before_the_parser_recurses() -> None:
    with pytest.raises(JsonRefused, match="nested deeper"):
        parse_bounded(b"[" * 100_000)
    with pytest.raises(json.JSONDecodeError):  # a file cut short: an ordinary JSON error
        parse_bounded(b'{"tenants": [{"name": "a"')


def test_a_long_number_is_refused_before_it_is_converted() -> None:
    parse_bounded(b'{"n": ' + b"9" * MAX_NUMBER + b"}")
    for number in (b"9" * 5000, b"1." + b"0" * 5000, b"-" + b"1" * (MAX_NUMBER + 1)):
        with pytest.raises(JsonRefused, match=f"number longer than {MAX_NUMBER}"):
            parse_bounded(b'{"n": ' + number + b"}")
    # Digits inside a string are text, not a number.
    assert parse_bounded(b'{"n": "' + b"9" * 5000 + b'"}') == {"n": "9" * 5000}


def test_a_file_over_the_size_bound_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonfile, "MAX_BYTES", 1024)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(["x" * 2000]))
    with pytest.raises(JsonRefused, match="larger than"):
        read_json(path)


@pytest.mark.parametrize(
    "text",
    [
        b'"' + b'\\"' * 2_000_000,  # a string that never ends, full of escaped quotes
        b'"\\' * 2_000_000,
        b"[" + b'"",' * 1_000_000 + b"0]",
        b"[]" * 2_000_000,
    ],
)
def test_the_scans_stay_linear_on_hostile_text(text: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(ValueError):  # JsonRefused or JSONDecodeError; the point is the time
        parse_bounded(text + b"x")
    assert time.monotonic() - started < 2
