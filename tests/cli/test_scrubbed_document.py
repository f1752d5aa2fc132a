"""The last scrub of a JSON document (`cli.common.scrubbed_document`): every
string, key or value, however often it repeats, in the same shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.cli import app
from reconciler.cli.common import scrubbed, scrubbed_document
from reconciler.model import Action
from reconciler.scrub import REDACTED, Scrubber

SECRET = "s3cret-value-4711-xyz"


@pytest.fixture
def active(monkeypatch: pytest.MonkeyPatch) -> Scrubber:
    scrubber = Scrubber([SECRET])
    monkeypatch.setattr(app, "_active", scrubber)
    return scrubber


def test_every_occurrence_is_scrubbed_however_often_it_repeats(active: Scrubber) -> None:
    echoed = f"auth failed for {SECRET}"
    document = {
        "tenants": [
            {"name": f"t{i}", "error": echoed, SECRET: [SECRET, echoed, 7, None, True]}
            for i in range(3)
        ],
        "summary": {"errors": 3, "last": (echoed, SECRET)},
    }
    clean = scrubbed_document(document)
    text = json.dumps(clean)
    assert SECRET not in text
    assert text.count(REDACTED) == 3 * 4 + 2
    first = clean["tenants"][0]
    assert first == {
        "name": "t0",
        "error": f"auth failed for {REDACTED}",
        REDACTED: [REDACTED, f"auth failed for {REDACTED}", 7, None, True],
    }
    assert clean["summary"] == {"errors": 3, "last": [f"auth failed for {REDACTED}", REDACTED]}
    assert [t["name"] for t in clean["tenants"]] == ["t0", "t1", "t2"]


def every_string_scrubbed(value: Any) -> Any:
    """What `scrubbed_document` is: every string scrubbed, as simply as it can be said."""
    if isinstance(value, str):
        return scrubbed(value)
    if isinstance(value, dict):
        return {scrubbed(str(k)): every_string_scrubbed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [every_string_scrubbed(item) for item in value]
    return value


TEXTS = st.sampled_from(["", "create", SECRET, f"x{SECRET}y", "plain words"]) | st.text(max_size=8)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | TEXTS
    | st.just(Action.CREATE)
)
DOCUMENTS = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(TEXTS | st.integers(), inner, max_size=4)
    ),
    max_leaves=40,
)


@given(DOCUMENTS)
def test_the_same_document_as_scrubbing_every_string(document: Any) -> None:
    app._active = Scrubber([SECRET])
    try:
        assert scrubbed_document(document) == every_string_scrubbed(document)
    finally:
        app._active = Scrubber()
