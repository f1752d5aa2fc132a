"""`python -m reconciler` runs the command-line interface."""

from reconciler.cli import run

run()
