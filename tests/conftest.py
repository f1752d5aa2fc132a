"""Fixtures shared by the end-to-end tests: a sandbox fleet on 127.0.0.1 and a
config repository written for it."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# The published OpenAPI document of the endpoints, which every response is checked against.
SPEC = str(Path(__file__).parent / "data" / "openapi-transports-email-config.yaml")


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


def run_cli_process(*argv: str) -> Result:
    """Run `qlik-email ARGV` as a process of its own (`python -m reconciler`), as
    a user runs it: its own signal handlers, environment and exit."""
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@contextlib.contextmanager
def checked_client(sandbox: Any, scanner: Any = None) -> Iterator[httpx.Client]:
    """A client for the sandbox whose every response is validated against SPEC and
    scanned for the fleet's secrets (`scanner`, by default one for all of them)."""
    from reconciler.sandbox.conformance import SecretScanner, shared_checker

    if scanner is None:
        scanner = SecretScanner(v for t in sandbox.tenants for v in t.secrets())
    hooks = {"response": [shared_checker(SPEC).hook, scanner.hook]}
    with httpx.Client(event_hooks=hooks, trust_env=False, timeout=30) as http:
        yield http


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def repo(sandbox, tmp_path: Path) -> Path:
    """A config repository for the sandbox: tenant-002 on Microsoft 365, the rest BasicAuth."""
    directory = tmp_path / "config"
    sandbox.write_config(directory, microsoft365=(sandbox.tenants[1].name,))
    return directory
