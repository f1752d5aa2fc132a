"""Colour follows the conventions: NO_COLOR (set and not empty) turns it off,
FORCE_COLOR and CLICOLOR_FORCE turn it on off a terminal, --color/--no-color win."""

from __future__ import annotations

import pytest

from reconciler.cli.app import color_wanted

ANSI = "\x1b["


@pytest.mark.parametrize(
    ("tty", "environ", "wanted"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # set but empty: no effect
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": "3"}, True),
        (False, {"FORCE_COLOR": ""}, False),
        (False, {"FORCE_COLOR": "0"}, False),
        (False, {"FORCE_COLOR": "false"}, False),
        (False, {"CLICOLOR_FORCE": "1"}, True),
        (False, {"CLICOLOR_FORCE": "0"}, False),
        (False, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),  # NO_COLOR wins
        (False, {"FORCE_COLOR": "1", "NO_COLOR": ""}, True),
    ],
)
def test_color_wanted(tty: bool, environ: dict[str, str], wanted: bool) -> None:
    assert color_wanted(tty, environ) is wanted


@pytest.fixture
def drifted(sandbox, repo, cli, monkeypatch):
    """The repository of a sandbox fleet in which tenant-001 drifted."""
    for name in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE"):
        monkeypatch.delenv(name, raising=False)
    assert cli("apply", str(repo), "--auto-approve").code == 0
    sandbox.edit("tenant-001", senderName="Edited")
    return repo


def test_drift_report_colours_follow_the_environment(cli, drifted, monkeypatch):
    # The captured stdout is not a terminal: no colour unless forced.
    plain = cli("drift", str(drifted))
    assert plain.code == 2 and ANSI not in plain.stdout
    monkeypatch.setenv("FORCE_COLOR", "1")
    forced = cli("drift", str(drifted))
    assert forced.code == 2 and ANSI in forced.stdout
    assert ANSI + "33m~ tenant-001" in forced.stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert ANSI not in cli("drift", str(drifted)).stdout
    monkeypatch.setenv("NO_COLOR", "")
    assert ANSI in cli("drift", str(drifted)).stdout
    assert ANSI not in cli("--no-color", "drift", str(drifted)).stdout
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("CLICOLOR_FORCE", "1")
    assert ANSI in cli("drift", str(drifted)).stdout
