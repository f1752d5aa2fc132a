"""The last scrub of a JSON document (`cli.common.scrubbed_document`): every
string, key or value, however often it repeats, in the same shape."""

from __future__ import annotations

import json

import pytest

from reconciler.cli import app
from reconciler.cli.common import scrubbed_document
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
