"""`python -m reconciler.sandbox serve ...`: the sandbox as a separate process.

Benchmarks and tests that need the server in another process start this.
When the fleet is ready it writes the `--ready-file` (a JSON description with
every tenant's credentials; written to a temporary name and renamed, so a
reader never sees half a file) and prints one line, `READY {json}`, to
stdout. It runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler.atomic import write_atomically
from reconciler.sandbox.cli import stop_on_signals
from reconciler.sandbox.fleet import Sandbox
from reconciler.sandbox.hostile import KINDS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reconciler.sandbox")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a sandbox fleet until SIGINT/SIGTERM")
    serve.add_argument("--tenants", type=int, default=3, help="number of tenants (default 3)")
    serve.add_argument("--port", type=int, default=0, help="HTTP port (default: a free one)")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="latency added to requests")
    serve.add_argument("--no-rate-limit", action="store_true", help="switch rate limits off")
    serve.add_argument("--tier1", type=int, default=1000, help="Tier 1 requests per minute")
    serve.add_argument("--tier2", type=int, default=100, help="Tier 2 requests per minute")
    serve.add_argument("--token-lifetime", type=float, default=21600.0, help="seconds")
    serve.add_argument("--enable-patch", action="store_true", help="let the deprecated PATCH work")
    serve.add_argument("--seed", type=int, default=None, help="fixed credentials and faults")
    serve.add_argument("--ready-file", type=Path, help="write a JSON description here when ready")
    serve.add_argument("--write-config", type=Path, help="write a config repository here")
    serve.add_argument("--auth", choices=("apiKey", "oauth"), default="apiKey")
    serve.add_argument(
        "--microsoft365", action="append", default=[], help="tenant to configure as Microsoft365"
    )
    serve.add_argument(
        "--hostile",
        action="append",
        default=[],
        metavar="TENANT=KIND[,KIND]",
        help="make TENANT a hostile server (kinds: " + ", ".join(KINDS) + "); repeatable",
    )
    return parser


def _hostile(values: list[str]) -> dict[str, list[str]]:
    """`--hostile TENANT=KIND[,KIND]` options as {tenant: [kinds]}."""
    kinds: dict[str, list[str]] = {}
    for value in values:
        tenant, _, listed = value.partition("=")
        if not tenant or not listed:
            raise SystemExit(f"--hostile {value!r}: expected TENANT=KIND[,KIND]")
        kinds.setdefault(tenant, []).extend(k.strip() for k in listed.split(",") if k.strip())
    return kinds


def serve(args: argparse.Namespace) -> int:
    sandbox = Sandbox(
        args.tenants,
        port=args.port,
        rate_limits=not args.no_rate_limit,
        tier1=args.tier1,
        tier2=args.tier2,
        seed=args.seed,
        token_lifetime_s=args.token_lifetime,
        patch_enabled=args.enable_patch,
        latency_ms=args.latency_ms,
        hostile=_hostile(args.hostile),
    )
    with stop_on_signals() as stop, sandbox as sb:
        description = {**sb.describe(), "pid": os.getpid()}
        if args.write_config is not None:
            root = sb.write_config(
                args.write_config, auth=args.auth, microsoft365=args.microsoft365
            )
            description["config_dir"] = str(root)
        if args.ready_file is not None:
            write_atomically(args.ready_file, json.dumps(description, indent=2))
        ready = {"base_url": sb.base_url, "smtp_ports": sb.smtp_ports, "pid": os.getpid()}
        print("READY " + json.dumps(ready), flush=True)
        stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2  # argparse already rejected anything else


if __name__ == "__main__":
    sys.exit(main())
