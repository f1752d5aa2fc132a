"""Where a configuration sits in its git checkout: the commit checked out and the
configuration directory's path from the repository's top.

A saved plan records both, so that the job that applies it (another machine,
another checkout path) can tell it holds the very configuration the plan was
made from.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from reconciler.values import valueclass

_GIT_TIMEOUT_S = 30


@valueclass
class CheckoutPlace:
    """The commit checked out (`git rev-parse HEAD`) and the configuration
    directory relative to the repository's top ("" at the top)."""

    commit: str
    path: str


def checkout_place(config: str | Path) -> CheckoutPlace | None:
    """The place of `config` (a directory or its root file); None outside a git
    checkout, or when git cannot say."""
    directory = Path(config)
    if not directory.is_dir():
        directory = directory.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--show-prefix", "--verify", "HEAD"],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.split("\n")
    if done.returncode != 0 or len(lines) < 2:
        return None
    # The prefix comes first, whatever the order of the options.
    return CheckoutPlace(lines[1].strip(), lines[0].strip().rstrip("/"))
