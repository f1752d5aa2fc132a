"""The built wheel, installed without extras into a clean virtual environment, as
a user installs it: the core commands work, the sandbox commands say what to
install. pip takes every wheel from the local wheelhouse (no network)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_workflows import ROOT, wheelhouse

pytestmark = pytest.mark.slow


def _run(
    *argv: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_wheel_without_extras_runs_the_core_commands_and_hints_at_the_extra(tmp_path):
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse())}
    source = tmp_path / "source"  # built from a copy: the checkout is never written to
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", ".ci", "build", "dist", "*.egg-info"),
    )
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
        "--wheel-dir", tmp_path / "dist", source, cwd=tmp_path, env=offline,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("qlik_email-*.whl")
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    installed = _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel,
                     cwd=tmp_path, env=offline)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    cli = venv / "bin" / "qlik-email"
    has_extra = _run(venv / "bin" / "python", "-c", "import aiosmtpd", cwd=tmp_path)
    assert has_extra.returncode != 0, "the extra must not come with the wheel"

    valid = _run(cli, "validate", ROOT / "examples" / "basic-auth", cwd=tmp_path)
    assert valid.returncode == 0 and valid.stdout.startswith("Configuration valid:"), valid
    assert _run(cli, "plan", "--help", cwd=tmp_path).returncode == 0
    plan = {
        "formatVersion": 1,
        "kind": "qlik-email/plan",
        "generator": "qlik-email test",
        "createdAt": "2026-01-01T00:00:00Z",
        "summary": {
            "create": 0,
            "update": 0,
            "replace": 0,
            "delete": 0,
            "unchanged": 0,
            "errors": 0,
        },
        "tenants": [],
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    shown = _run(cli, "show", tmp_path / "plan.json", cwd=tmp_path)
    assert shown.returncode == 0 and "No changes." in shown.stdout, shown
    demo = _run(cli, "demo", cwd=tmp_path)
    assert demo.returncode == 1
    assert "pip install 'qlik-email[sandbox]'" in demo.stderr
    assert "Internal error" not in demo.stderr
