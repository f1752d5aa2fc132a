"""The command-line interface: the only place that prints or picks an exit code.

Each command lives in its own module, imported only when it runs (see
`app.COMMANDS`), so `qlik-email --help` starts quickly.
"""

from __future__ import annotations

from reconciler.cli.app import cli, main, run

__all__ = ["cli", "main", "run"]
