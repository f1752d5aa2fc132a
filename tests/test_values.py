"""`@valueclass`: a frozen dataclass to the type checker, a plain one (with
slots, compared and hashed by its fields) at run time."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from reconciler.values import valueclass

ROOT = Path(__file__).resolve().parent.parent


@valueclass
class _Point:
    x: int
    y: int = 0
    note: str = dataclasses.field(default="", compare=False)


@valueclass
class _OwnHash:
    x: int

    def __hash__(self) -> int:
        return 7


def test_a_value_class_is_a_dataclass_with_slots_compared_and_hashed_by_its_fields() -> None:
    point = _Point(1, 2, note="a")
    assert dataclasses.is_dataclass(point)
    assert not hasattr(point, "__dict__")  # slots
    assert point == _Point(1, 2, note="b")  # `note` is not compared
    assert hash(point) == hash(_Point(1, 2, note="b"))
    assert point != _Point(1, 3)
    assert {point, _Point(1, 2)} == {point}
    assert dataclasses.replace(point, y=5) == _Point(1, 5)
    assert hash(_OwnHash(1)) == 7  # a hash of its own is kept


def test_the_type_checker_refuses_an_assignment_to_a_field(tmp_path: Path) -> None:
    """Immutability is the type checker's to enforce (mypy --strict on the package)."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        "from reconciler.model import FieldChange\n"
        "change = FieldChange('senderName', None, 'Acme')\n"
        "change.after = 'Evil'\n"
        "print(change.after)\n"
    )
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(
        [*command, str(snippet)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stdout
    assert 'snippet.py:3: error: Property "after" defined in "FieldChange" is read-only' in (
        done.stdout
    )
    assert "snippet.py:4" not in done.stdout  # reading is fine
