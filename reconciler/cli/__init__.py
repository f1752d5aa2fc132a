"""The command-line interface: the only place that prints or picks an exit code.

Each command lives in its own module and imports the heavy parts of the
pipeline (httpx, jsonschema) only when it runs, so `qlik-email --help` is quick.
"""

from __future__ import annotations

from reconciler.cli import apply, demo, drift, plan, validate
from reconciler.cli.app import cli, main

cli.add_command(validate.validate)
cli.add_command(plan.plan)
cli.add_command(apply.apply)
cli.add_command(demo.demo)
cli.add_command(drift.drift)

__all__ = ["cli", "main"]
