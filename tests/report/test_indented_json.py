"""`style.indented_json` writes every document as json.dumps(indent=2,
ensure_ascii=False) does, whichever library writes it."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import Action
from reconciler.report.style import indented_json

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: "e" not in repr(x))
    | st.text()
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def python_json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


@given(DOCUMENTS)
def test_the_same_text_as_json_for_any_document(document: Any) -> None:
    assert indented_json(document) == python_json(document)


def test_the_same_text_for_what_orjson_does_not_write() -> None:
    for document in ({"big": 2**80}, {"small": -(2**70)}, {1: "int key"}, {(1, 2): "x"}):
        try:
            expected = python_json(document)
        except TypeError:
            with pytest.raises(TypeError):
                indented_json(document)
            continue
        assert indented_json(document) == expected


def test_tuples_and_str_enums_as_json_writes_them() -> None:
    document = {"action": Action.CREATE, "pair": ("a", 1), "plain": "\u2028\x7f\x1b"}
    assert indented_json(document) == python_json(document)


def test_what_json_refuses_is_refused() -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    for value in (Point(1), object()):
        with pytest.raises(TypeError):
            indented_json({"value": value})


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_is_the_same_number_and_the_same_text_unless_json_uses_an_exponent(
    number: float,
) -> None:
    written = indented_json([number])
    assert json.loads(written) == [number]
    if "e" not in repr(number):
        assert written == python_json([number])


def test_nan_and_infinities_are_null() -> None:
    assert json.loads(indented_json({"a": math.nan, "b": [math.inf, -math.inf]})) == {
        "a": None,
        "b": [None, None],
    }
