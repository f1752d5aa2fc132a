"""`qlik-email validate`: check the configuration files, touching no tenant."""

from __future__ import annotations

import click

from reconciler.cli.app import EXIT_OK, out
from reconciler.cli.options import allowed_hosts_from_env
from reconciler.config import load_config
from reconciler.model import Provider


@click.command()
@click.argument("path", required=False, default=".", type=click.Path(file_okay=True, dir_okay=True))
def validate(path: str) -> int:
    """Validate the configuration at PATH (a directory with qlik-email.yaml, or that file).

    Every problem of every file is reported with file:line:column. No secret is
    resolved and no tenant is contacted.
    """
    desired = load_config(path, allowed_hosts=allowed_hosts_from_env())
    absent = sum(1 for t in desired.tenants if t.email is None)
    by_provider = {
        p: sum(1 for t in desired.tenants if t.email is not None and t.email.provider is p)
        for p in Provider
    }
    out(
        f"Configuration valid: {len(desired.tenants)} tenant(s) "
        f"({by_provider[Provider.BASIC_AUTH]} BasicAuth, "
        f"{by_provider[Provider.MICROSOFT365]} Microsoft365, {absent} absent).\n"
    )
    return EXIT_OK
