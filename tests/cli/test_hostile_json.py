"""Every JSON file the CLI reads (saved plans, reports, the applied state) is
bounded before it is parsed: a hostile one is a clean exit 1 naming the file,
never an internal error. Inventories are YAML, read by the configuration's
bounded reader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

HOSTILE = {
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "deep-inside": b'{"kind": "qlik-email/plan", "tenants": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "long-number": b'{"kind": "qlik-email/plan", "formatVersion": ' + b"9" * 5000 + b"}",
    "never-closed": b'{"kind": "qlik-email/plan", "tenants": ' + b"[" * 100_000,
}


def refused_cleanly(result: object, path: Path) -> None:
    code, stderr = result.code, result.stderr  # type: ignore[attr-defined]
    assert code == 1, result
    assert str(path) in stderr and "Internal error" not in stderr, stderr
    # apply takes a file without "qlik-email/plan" near its start for a
    # configuration file, which the YAML reader refuses as deep.
    assert "not parsed" in stderr or "maximum nesting depth" in stderr, stderr


@pytest.fixture(params=sorted(HOSTILE))
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"{request.param}.json"
    path.write_bytes(HOSTILE[request.param])
    return path


@pytest.mark.parametrize(
    "argv",
    [
        lambda file: ["show", file],
        lambda file: ["show", file, "--format", "json"],
        lambda file: ["apply", file, "--auto-approve"],
        lambda file: ["report", "merge", file],
    ],
    ids=["show", "show-json", "apply-plan", "report-merge"],
)
def test_a_hostile_json_file_is_an_exit_1_naming_it(
    cli: Callable[..., object], hostile: Path, argv: Callable[[str], list[str]]
) -> None:
    refused_cleanly(cli(*argv(str(hostile))), hostile)


def test_a_hostile_state_file_is_an_exit_1_naming_it(
    cli: Callable[..., object], repo: Path, tmp_path: Path
) -> None:
    for name, text in HOSTILE.items():
        state = tmp_path / f"{name}-state.json"
        state.write_bytes(text)
        refused_cleanly(cli("plan", str(repo), "--state", str(state)), state)


def test_a_hostile_yaml_inventory_is_an_exit_1_naming_it(
    cli: Callable[..., object], tmp_path: Path
) -> None:
    for name, value in (("deep", "[" * 100_000 + "]" * 100_000), ("number", "9" * 5000)):
        inventory = tmp_path / f"{name}.yaml"
        inventory.write_text(f"- name: a\n  url: https://a.qlikcloud.com\n  auth: {value}\n")
        result = cli("import", "--inventory", str(inventory), str(tmp_path / f"out-{name}"))
        assert result.code == 1, result  # type: ignore[attr-defined]
        stderr = result.stderr  # type: ignore[attr-defined]
        assert f"{name}.yaml:3:" in stderr and "Internal error" not in stderr, stderr
