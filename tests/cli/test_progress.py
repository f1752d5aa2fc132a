"""Progress on stderr stays cheap at 10,000 tenants: a TTY is redrawn about ten
times a second, a pipe gets periodic counts (or a line per tenant while applying).
"""

from __future__ import annotations

import pytest

from reconciler.cli import common as common_module
from reconciler.engine import Phase

# --- progress -------------------------------------------------------------------------------


class Ticks:
    """A monotonic clock that moves 1 ms per reading."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def _progress(monkeypatch: pytest.MonkeyPatch, tty: bool, phase: Phase = Phase.READ) -> list[str]:
    lines: list[str] = []
    monkeypatch.setattr(common_module.time, "monotonic", Ticks())
    monkeypatch.setattr(common_module.sys.stderr, "isatty", lambda: tty, raising=False)
    monkeypatch.setattr(
        common_module.click, "echo", lambda text, nl=True, err=False: lines.append(str(text))
    )
    printer = common_module.ProgressPrinter(True)
    printer.begin(phase, 10_000)
    for index in range(10_000):
        failed = index % 1000 == 0
        printer.step(f"tenant-{index}", "failed" if failed else "applied", failed)
    return lines


def test_progress_on_a_tty_redraws_about_ten_times_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = _progress(monkeypatch, tty=True)
    # 10,000 tenants read at 1 ms each: ~10 s, so ~100 redraws and the last line
    assert 90 <= len(lines) <= 110
    assert lines[-1] == "\rReading tenants: 10000/10000 (10 failed)"


def test_progress_on_a_pipe_prints_counts_every_five_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = _progress(monkeypatch, tty=False)
    # ~10 s of reading: a count after 5 s, and the final one
    assert lines == [
        "Reading tenants: 5001/10000 (6 failed)",
        "Reading tenants: 10000/10000 (10 failed)",
    ]
    per_tenant = _progress(monkeypatch, tty=False, phase=Phase.APPLY)
    assert len(per_tenant) == 10_000 and per_tenant[0] == "Applying: [1/10000] tenant-0: failed"


def test_a_tenant_name_in_a_progress_line_is_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr(common_module.sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.setattr(
        common_module.click, "echo", lambda text, nl=True, err=False, **_: lines.append(str(text))
    )
    printer = common_module.ProgressPrinter(True)
    printer.begin(Phase.APPLY, 2)
    printer.step("evil\x1b]52;c;eA==\x07\n::error::x", "applied", False)
    assert lines == ["Applying: [1/2] evil\\x1b]52;c;eA==\\x07\\n::error::x: applied"]
