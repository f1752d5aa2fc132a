"""The documents name files that exist: a test, benchmark or example a reader
is told to run or open is where the text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAMED = re.compile(r"(?<![\w/.-])((?:tests|bench|examples|scripts)/[\w./-]*\w)")
GENERATED = ("bench/results",)  # written by the benchmarks, not kept in git


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_repository_path_a_document_names_exists(doc: Path) -> None:
    named = set(NAMED.findall(doc.read_text(encoding="utf-8")))
    missing = sorted(
        p for p in named if "*" not in p and not p.startswith(GENERATED) and not (ROOT / p).exists()
    )
    assert not missing, f"{doc.name} names files that do not exist: {missing}"
