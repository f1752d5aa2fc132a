"""`qlik-email sandbox`: run a local test fleet in the foreground until Ctrl-C.

The main CLI registers `sandbox_command`. It prints the fleet's URLs and
credentials: they belong to throw-away tenants that exist only inside this
process, and a demo needs them, so printing them is intended (and the output
says so).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from reconciler.sandbox.fleet import Sandbox
from reconciler.sandbox.hostile import KINDS
from reconciler.sandbox.tenants import default_names

# Printing 10,000 tenants helps nobody; the config repository has them all.
_SHOWN_TENANTS = 20


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM (handlers restored afterwards)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def parse_hostile(values: Sequence[str], default_tenant: str) -> dict[str, list[str]]:
    """`--hostile [TENANT=]KIND[,KIND]` options as {tenant: [kinds]}; a KIND alone
    is `default_tenant`'s. Unknown kinds and tenants are the Sandbox's to refuse."""
    kinds: dict[str, list[str]] = {}
    for value in values:
        tenant, equals, listed = value.rpartition("=")
        names = [k.strip() for k in listed.split(",") if k.strip()]
        if not names or (equals and not tenant):
            expected = f"{value!r}: expected [TENANT=]KIND[,KIND]"
            raise click.BadParameter(expected, param_hint="--hostile")
        kinds.setdefault(tenant or default_tenant, []).extend(names)
    return kinds


def describe_fleet(
    sb: Sandbox, config_dir: Path | None, hostile: Mapping[str, Sequence[str]] | None = None
) -> str:
    """The banner: where everything is, and the credentials of the test fleet."""
    ports = sb.smtp_ports
    lines = [
        f"qlik-email sandbox: {len(sb.tenants)} tenant(s) at {sb.base_url}/t/<tenant>",
        f"SMTP on {sb.smtp_host}: none={ports['none']} StartTLS={ports['StartTLS']} "
        f"SSL/TLS={ports['SSL/TLS']}",
        "These credentials belong to a local test fleet that lives only as long as this",
        "process; printing them is intended.",
        "",
    ]
    for tenant in sb.tenants[:_SHOWN_TENANTS]:
        lines += [
            f"{tenant.name}  {tenant.url}",
            f"  api key {tenant.api_key}   (non-admin: {tenant.nonadmin_api_key})",
            f"  oauth   {tenant.oauth_client_id} / {tenant.oauth_client_secret}",
            f"  smtp    {tenant.smtp_username} / {tenant.smtp_password}",
            f"  m365    tenant {tenant.m365_provider_tenant_id} client {tenant.m365_client_id}"
            f" / {tenant.m365_client_secret}",
        ]
    hidden = len(sb.tenants) - _SHOWN_TENANTS
    if hidden > 0:
        lines.append(f"... and {hidden} more tenants (use --write-config to get them all)")
    if config_dir is not None:
        lines += ["", f"Config repository written to {config_dir}"]
    if hostile:
        lines.append("")
        lines += [f"{name} is hostile: {', '.join(kinds)}" for name, kinds in hostile.items()]
    lines += ["", "Press Ctrl-C to stop."]
    return "\n".join(lines)


@click.command("sandbox")
@click.option(
    "--tenants",
    default=3,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="How many tenants the fleet has (tenant-001, tenant-002, ...).",
)
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="HTTP port (0: a free one).")
@click.option(
    "--write-config",
    "config_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write a qlik-email config repository for the fleet here.",
)
@click.option("--auth", type=click.Choice(["apiKey", "oauth"]), default="apiKey", show_default=True)
@click.option("--latency-ms", type=click.FloatRange(0), default=0.0, help="Added to every request.")
@click.option("--no-rate-limit", is_flag=True, help="Switch Qlik's rate limits off.")
@click.option("--seed", type=int, help="Fixed credentials and fault draws.")
@click.option(
    "--hostile",
    "hostile",
    multiple=True,
    metavar="[TENANT=]KIND[,KIND]",
    help="Make TENANT (default tenant-001) a hostile server; repeatable. Kinds: "
    + ", ".join(KINDS)
    + ".",
)
def sandbox_command(
    tenants: int,
    port: int,
    config_dir: Path | None,
    auth: str,
    latency_ms: float,
    no_rate_limit: bool,
    seed: int | None,
    hostile: tuple[str, ...],
) -> None:
    """Run a local fleet of fake Qlik Cloud tenants (with an SMTP server) until Ctrl-C."""
    adversaries = parse_hostile(hostile, default_tenant=default_names(tenants)[0])
    try:
        sandbox = Sandbox(
            tenants,
            port=port,
            rate_limits=not no_rate_limit,
            latency_ms=latency_ms,
            seed=seed,
            hostile=adversaries,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--hostile") from None
    with stop_on_signals() as stop, sandbox as sb:
        if config_dir is not None:
            sb.write_config(config_dir, auth=auth)
        click.echo(describe_fleet(sb, config_dir, adversaries))
        stop.wait()
    click.echo("Sandbox stopped.")
