"""`python -m reconciler` runs the command-line interface."""

import sys

from reconciler.cli import main

sys.exit(main())
