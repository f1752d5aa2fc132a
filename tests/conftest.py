"""Fixtures shared by the end-to-end tests: a sandbox fleet on 127.0.0.1 and a
config repository written for it."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def sandbox() -> Iterator[object]:
    """A fresh four-tenant sandbox (HTTP + SMTP on 127.0.0.1), stopped afterwards."""
    from reconciler.sandbox import Sandbox

    with Sandbox(tenants=4, seed=7) as fleet:
        yield fleet


class Result:
    """What one in-process CLI run printed and returned."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def __repr__(self) -> str:
        return f"Result(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def run_cli(*argv: str) -> Result:
    """Run `qlik-email ARGV` in-process, capturing stdout and stderr."""
    from reconciler.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(list(argv))
    return Result(code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def repo(sandbox, tmp_path: Path) -> Path:
    """A config repository for the sandbox: tenant-002 on Microsoft 365, the rest BasicAuth."""
    directory = tmp_path / "config"
    sandbox.write_config(directory, microsoft365=(sandbox.tenants[1].name,))
    return directory
