"""Access to the JSON Schemas shipped in `schemas/`, compiled once each."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def load_schema(name: str) -> dict[str, Any]:
    """The schema document `name` (e.g. "plan.schema.json")."""
    data: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return data


@functools.cache
def validator(name: str) -> Any:
    """A compiled Draft 2020-12 validator for schema `name`."""
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema(name))
