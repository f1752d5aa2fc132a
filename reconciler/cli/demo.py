"""`qlik-email demo`: the whole workflow against a local sandbox fleet."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import click

from reconciler.cli.app import EXIT_CHANGES, EXIT_OK, err, main, out
from reconciler.sandbox import Sandbox  # the `sandbox` extra: without it, a hint (app.py)

STEPS = (
    ("Validate the configuration repository", ["validate", "{dir}"], {EXIT_OK}),
    ("Plan: what would change?", ["plan", "{dir}", "--detailed-exitcode"], {EXIT_CHANGES}),
    (
        "Apply: PUT or DELETE, verify-connection, read back",
        [
            "apply",
            "{dir}",
            "--auto-approve",
            "--allow-delete",
            "--test-email",
            "admin@demo.example",
        ],
        {EXIT_OK},
    ),
    ("Plan again: nothing left to do", ["plan", "{dir}", "--detailed-exitcode"], {EXIT_OK}),
)

DRIFT_STEPS = (
    (
        "Drift: what differs, and how healthy each tenant is",
        ["drift", "{dir}", "--verify"],
        {EXIT_CHANGES},
    ),
    (
        "Apply again, re-sending the secrets",
        ["apply", "{dir}", "--auto-approve", "--rotate-secrets"],
        {EXIT_OK},
    ),
    ("Drift again: clean", ["drift", "{dir}", "--verify"], {EXIT_OK}),
)


@click.command()
@click.option(
    "--tenants", type=click.IntRange(4, 50), default=4, show_default=True, help="Sandbox tenants."
)
@click.option(
    "--keep", type=click.Path(file_okay=False), help="Write the config repository here and keep it."
)
def demo(tenants: int, keep: str | None) -> int:
    """Run validate -> plan -> apply -> plan against a local sandbox fleet, then
    change tenants behind the tool's back, show the drift, and repair it."""
    with Sandbox(tenants=tenants) as sandbox, tempfile.TemporaryDirectory() as scratch:
        directory = Path(keep) if keep else Path(scratch) / "config"
        names = [t.name for t in sandbox.tenants]
        _seed(sandbox, names)
        sandbox.write_config(directory, microsoft365=(names[2],), absent=(names[3],))
        out(_intro(sandbox, directory, names, kept=keep is not None))
        for title, argv, expected in STEPS:
            if not _step(title, [a.format(dir=directory) for a in argv], expected):
                return 1
        sandbox.edit(
            names[0], senderName="Changed In The Console", serverPort=sandbox.smtp_ports["none"]
        )
        sandbox.break_password(names[1])
        out(
            f"\n*** Behind the tool's back: someone edits {names[0]} in the console, "
            f"and the SMTP password stored in {names[1]} stops working ***\n"
        )
        for title, argv, expected in DRIFT_STEPS:
            if not _step(title, [a.format(dir=directory) for a in argv], expected):
                return 1
        out(f"\nThe sandbox received {len(sandbox.mailbox)} e-mail(s); the demo is over.\n")
    return EXIT_OK


def _seed(sandbox: Sandbox, names: list[str]) -> None:
    # A config made long ago through the deprecated PATCH, and one to delete.
    legacy = sandbox.tenant(names[1])
    sandbox.seed_legacy(
        names[1],
        {
            "serverAddress": "127.0.0.1",
            "serverPort": sandbox.smtp_ports["StartTLS"],
            "securityType": "StartTLS",
            "username": legacy.smtp_username,
            "emailAddress": f"old@{names[1]}.example",
        },
    )
    doomed = sandbox.tenant(names[3])
    sandbox.seed(
        names[3],
        {
            "serviceProvider": "BasicAuth",
            "providerConfig": {
                "serverAddress": "127.0.0.1",
                "serverPort": sandbox.smtp_ports["SSL/TLS"],
                "securityType": "SSL/TLS",
                "username": doomed.smtp_username,
                "emailPassword": doomed.smtp_password,
                "emailAddress": f"qlik@{names[3]}.example",
            },
        },
    )


def _intro(sandbox: Sandbox, directory: Path, names: list[str], *, kept: bool) -> str:
    where = (
        f"The configuration repository is in {directory} (kept after the demo):\n"
        if kept
        else f"The configuration repository is in {directory}, a temporary directory deleted "
        "when the demo ends (run `qlik-email demo --keep DIR` to keep it):\n"
    )
    running = (
        f"A sandbox of {len(names)} Qlik Cloud tenants is running at "
        f"{sandbox.base_url}, with a real SMTP server on 127.0.0.1.\n"
    )
    fleet = (
        f"  {names[0]}: BasicAuth (new)   {names[1]}: BasicAuth (has a legacy PATCH-made config)\n"
        f"  {names[2]}: Microsoft 365 (new)   {names[3]}: email: absent (has a config to delete)\n"
    )
    return running + where + fleet


def _step(title: str, argv: list[str], expected: set[int]) -> bool:
    out(f"\n=== {title}\n$ qlik-email {shlex.join(argv)}\n")
    code = main(argv)
    out(f"(exit code {code})\n")
    if code not in expected:
        err(f"The demo expected exit code {sorted(expected)} here, got {code}.")
        return False
    return True
