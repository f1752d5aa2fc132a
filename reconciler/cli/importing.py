"""`qlik-email import`: write a configuration repository from live tenants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from reconciler.cli.app import EXIT_ERROR, EXIT_OK, State, err, out
from reconciler.cli.common import ProgressPrinter, secret_resolver
from reconciler.cli.options import allowed_hosts_from_env
from reconciler.config.build import build_auth
from reconciler.config.hosts import host_allowed
from reconciler.config.quote import shown
from reconciler.engine import Engine, Selection
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.importer import (
    ImportedTenant,
    InventoryEntry,
    auth_issues,
    entry_issues,
    load_inventory,
    parse_tenant_option,
    render_root,
    render_tenant,
    secret_references,
    shared_email,
    summary_counts,
)
from reconciler.importer.existing import (
    check_added,
    clashes,
    open_repository,
    written_auth,
)
from reconciler.importer.output import (
    ROOT_FILE,
    refuse_links,
    tenant_file,
    validate_files,
    write_files,
)
from reconciler.model import (
    DEFAULT_ALLOWED_HOSTS,
    DesiredState,
    LiveRead,
    LiveState,
    ReadFailure,
    Scalar,
    SourcePos,
    TenantSpec,
)
from reconciler.report import escape

DEFAULT_API_KEY_REF = "${env:QLIK_API_KEY}"


@click.command()
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option(
    "--inventory",
    type=click.Path(exists=True, dir_okay=False),
    help="Tenants to import: a CSV file (name,url[,apiKey|oauthClientId,oauthClientSecret]) "
    "or a YAML list of {name, url[, auth]}.",
)
@click.option(
    "--tenant",
    "tenant_options",
    multiple=True,
    metavar="NAME=URL",
    help="A tenant to import (repeatable; adds to --inventory).",
)
@click.option(
    "--api-key-ref",
    metavar="REF",
    help=f"defaults.auth: an API key reference (default: {DEFAULT_API_KEY_REF}).",
)
@click.option("--oauth-client-id", metavar="ID", help="defaults.auth: an OAuth client id.")
@click.option(
    "--oauth-secret-ref", metavar="REF", help="defaults.auth: the OAuth client secret reference."
)
@click.option("--oauth-scope", metavar="SCOPE", help="defaults.auth: an OAuth scope.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option(
    "--add",
    is_flag=True,
    help="Add the tenants to the existing repository OUTDIR: write only their files, "
    "leaving out what the root file's defaults say; the root file is not touched.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=64,
    show_default=True,
    help="Tenants read at once.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress on stderr (default: only on a TTY)."
)
@click.pass_obj
def import_command(
    state: State,
    outdir: str,
    inventory: str | None,
    tenant_options: tuple[str, ...],
    api_key_ref: str | None,
    oauth_client_id: str | None,
    oauth_secret_ref: str | None,
    oauth_scope: str | None,
    force: bool,
    add: bool,
    concurrency: int,
    progress: bool | None,
) -> int:
    """Read live tenants and write OUTDIR/qlik-email.yaml and OUTDIR/tenants/<name>.yaml.

    The files hold each tenant's live e-mail configuration (`email: absent` when
    it has none), with secret fields as references to fill in, such as
    ${env:ACME_SMTP_PASSWORD}: the API never returns secrets. Like plan, import
    resolves only the API credentials and runs no command from a reference.
    Nothing is written unless every tenant could be read and the files validate;
    a symbolic link in OUTDIR is never written through; each file is replaced
    atomically.

    With --add, OUTDIR is a repository that exists: only the new tenants' files
    are written (never the root file), without the values the root's defaults
    give them, and only once the repository validates with them.
    """
    entries = _entries(inventory, tenant_options)
    given = _auth_options(api_key_ref, oauth_client_id, oauth_secret_ref, oauth_scope)
    root = Path(outdir)
    if add:
        if force:
            raise click.UsageError("--add never overwrites a file: drop --force")
        return _add(state, root, entries, given, concurrency, progress)
    default_auth = _default_auth(entries, given)
    _refuse_existing(root, entries, force)
    _refuse_foreign_hosts(entries, allowed_hosts_from_env() or list(DEFAULT_ALLOWED_HOSTS))
    live = _read(state, root, entries, default_auth, concurrency, progress)
    if _unread(entries, live):
        return EXIT_ERROR
    shared = shared_email([s.email for s in live.values() if isinstance(s, LiveState) and s.email])
    tenants = _render(entries, live, shared)
    files = _files(default_auth, tenants, shared, foreign_hosts(e.url for e in entries))
    _validate(root, files)
    write_files(root, files)
    out(_summary(root, tenants))
    return EXIT_OK


def _add(
    state: State,
    root: Path,
    entries: list[InventoryEntry],
    given: dict[str, Any] | None,
    concurrency: int,
    progress: bool | None,
) -> int:
    """`import --add`: the new tenants' files only, checked with the repository."""
    hosts = allowed_hosts_from_env()
    repository = open_repository(root, hosts)
    taken = clashes(repository, entries)
    if taken:
        raise ReconcilerError(
            f"already in the repository: {'; '.join(taken[:5])}; nothing was contacted"
        )
    auths = {e.name: written_auth(repository, e.auth, given) for e in entries}
    files = [tenant_file(e.name) for e in entries]
    refuse_links(root, files)
    existing = [root / rel for rel in files] + [root / "tenants" / f"{e.name}.yml" for e in entries]
    if any(path.exists() for path in existing):
        there = ", ".join(str(path) for path in existing if path.exists())
        raise ReconcilerError(f"refusing to overwrite {there}: --add writes new files only")
    _refuse_foreign_hosts(entries, list(hosts or repository.desired.settings.allowed_hosts))
    live = _read(state, root, entries, given or repository.auth, concurrency, progress)
    if _unread(entries, live):
        return EXIT_ERROR
    tenants = _render(entries, live, repository.email, auths)
    written = {tenant_file(t.name): t.text for t in tenants}
    check_added(repository, written, hosts)
    write_files(root, written)
    out(_summary(root, tenants, added=True))
    return EXIT_OK


def _unread(entries: list[InventoryEntry], live: Mapping[str, LiveRead]) -> bool:
    """Say which tenants could not be read, if any (then nothing is written)."""
    failed = {name: str(read) for name, read in live.items() if isinstance(read, ReadFailure)}
    for entry in entries:
        if entry.name in failed:
            # The reason may quote what a tenant's server answered: shown made safe.
            reason = shown(failed[entry.name], limit=None)
            err(f"Error: tenant {entry.name} ({entry.url}): {reason}")
    if failed:
        err(f"Error: {len(failed)} tenant(s) could not be read; nothing was written.")
    return bool(failed)


def foreign_hosts(urls: Iterable[str]) -> list[str]:
    """The hosts of `urls` that the default `allowedHosts` does not allow, as
    `settings.allowedHosts` names them (an IPv6 address in brackets)."""
    hosts = {urlsplit(url).hostname or "" for url in urls}
    foreign = sorted(h for h in hosts if h and not host_allowed(h, DEFAULT_ALLOWED_HOSTS))
    return [f"[{h}]" if ":" in h else h for h in foreign]


def _validate(root: Path, files: dict[str, str]) -> None:
    """Validate the rendered files as written (their own allowedHosts, whatever
    QLIK_EMAIL_ALLOWED_HOSTS says) before writing any: a live value the
    configuration language refuses (say, a malformed address) stops the
    import, at its line."""
    try:
        validate_files(root, files)
    except ConfigError:
        err(
            "Error: the live configuration cannot be written as valid files; nothing was "
            "written. Fix the values below on the tenant, or leave the tenant out:"
        )
        raise


def _entries(inventory: str | None, options: tuple[str, ...]) -> list[InventoryEntry]:
    entries = load_inventory(Path(inventory)) if inventory else []
    try:
        extra = [parse_tenant_option(text) for text in options]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not entries and not extra:
        raise click.UsageError("name the tenants to import: --inventory FILE or --tenant NAME=URL")
    if extra:
        issues = entry_issues([*entries, *extra])
        if issues:
            raise ConfigError(issues)
    return [*entries, *extra]


def _default_auth(
    entries: list[InventoryEntry], given: dict[str, Any] | None
) -> dict[str, Any] | None:
    """defaults.auth of a new repository: the options', else None when every
    tenant has its own, else an API key in $QLIK_API_KEY."""
    if given is not None:
        return given
    if all(entry.auth is not None for entry in entries):
        return None
    return {"apiKey": DEFAULT_API_KEY_REF}


def _auth_options(
    api_key_ref: str | None, client_id: str | None, secret_ref: str | None, scope: str | None
) -> dict[str, Any] | None:
    """The auth the options give (None: none given)."""
    oauth_given = client_id is not None or secret_ref is not None or scope is not None
    if api_key_ref is not None and oauth_given:
        raise click.UsageError("use either --api-key-ref or the --oauth-* options, not both")
    auth: dict[str, Any]
    if oauth_given:
        if client_id is None or secret_ref is None:
            raise click.UsageError("--oauth-client-id and --oauth-secret-ref go together")
        oauth = {"clientId": client_id, "clientSecret": secret_ref}
        auth = {"oauth": {**oauth, "scope": scope} if scope else oauth}
    elif api_key_ref is not None:
        auth = {"apiKey": api_key_ref}
    else:
        return None
    problems = auth_issues(auth, None)
    if problems:
        raise click.UsageError("; ".join(problems).replace("auth.", "defaults.auth."))
    return auth


def _targets(root: Path, entries: list[InventoryEntry]) -> list[Path]:
    return [root / ROOT_FILE, *(root / tenant_file(e.name) for e in entries)]


def _refuse_existing(root: Path, entries: list[InventoryEntry], force: bool) -> None:
    refuse_links(root, [ROOT_FILE, *(tenant_file(e.name) for e in entries)])
    if (root / "qlik-email.yml").exists():
        raise ReconcilerError(
            f"{root / 'qlik-email.yml'} exists: import writes qlik-email.yaml; remove it first"
        )
    if force:
        return
    existing = [path for path in _targets(root, entries) if path.exists()]
    existing += [root / "tenants" / f"{e.name}.yml" for e in entries]
    existing = [path for path in existing if path.exists()]
    if existing:
        shown = ", ".join(str(path) for path in existing[:5])
        more = f" and {len(existing) - 5} more" if len(existing) > 5 else ""
        raise ReconcilerError(f"refusing to overwrite {shown}{more}: pass --force to replace")


def _specs(
    entries: list[InventoryEntry], default_auth: Mapping[str, Any] | None
) -> list[TenantSpec]:
    specs = []
    for entry in entries:
        auth = build_auth(dict(entry.auth if entry.auth is not None else default_auth or {}))
        assert auth is not None  # checked with the entries
        source = SourcePos(entry.file, entry.line, entry.column)
        specs.append(TenantSpec(entry.name, entry.url, auth, None, source))
    return specs


def _refuse_foreign_hosts(entries: list[InventoryEntry], allowed: list[str]) -> None:
    """Contact no tenant whose host is not `allowed`: the credentials would go to
    a host that `validate` then refuses."""
    foreign = [e for e in entries if not host_allowed(urlsplit(e.url).hostname or "", allowed)]
    if foreign:
        listed = ", ".join(
            f"{escape.terminal(e.name)} ({escape.terminal(e.url)})" for e in foreign[:5]
        )
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise ReconcilerError(
            f"not an allowed tenant host: {listed}{more}; nothing was contacted. Allowed: "
            f"{', '.join(allowed)} (set QLIK_EMAIL_ALLOWED_HOSTS to import from other hosts)"
        )


def _read(
    state: State,
    root: Path,
    entries: list[InventoryEntry],
    default_auth: Mapping[str, Any] | None,
    concurrency: int,
    flag: bool | None,
) -> dict[str, LiveRead]:
    """GET every tenant, as plan does: concurrent, paced, API credentials only."""
    specs = tuple(_specs(entries, default_auth))
    selection = Selection(DesiredState(root.resolve(), specs), specs, concurrency)
    secrets = secret_resolver(state, root.resolve(), allow_commands=False)
    return Engine(selection, secrets, progress=ProgressPrinter(flag)).read()


def _render(
    entries: list[InventoryEntry],
    live: dict[str, LiveRead],
    defaults: Mapping[str, Any] | None = None,
    auths: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> list[ImportedTenant]:
    """The tenant file of every entry, in memory, leaving out the values of
    `defaults` (defaults.email); `auths` replaces the entries' own auth."""
    ref_names = secret_references(e.name for e in entries)
    tenants = []
    for entry in entries:
        state = live[entry.name]
        assert isinstance(state, LiveState)
        auth = auths[entry.name] if auths is not None else entry.auth
        tenants.append(
            render_tenant(entry.name, entry.url, auth, state, ref_names[entry.name], defaults)
        )
    return tenants


def _files(
    default_auth: dict[str, Any] | None,
    tenants: list[ImportedTenant],
    shared: Mapping[str, Scalar],
    hosts: list[str],
) -> dict[str, str]:
    """Every file to write: its path relative to OUTDIR, and its text."""
    day = date.today().isoformat()
    hosts = [*DEFAULT_ALLOWED_HOSTS, *hosts] if hosts else []
    files = {ROOT_FILE: render_root(default_auth, len(tenants), day, shared, hosts)}
    files.update((tenant_file(tenant.name), tenant.text) for tenant in tenants)
    return files


def _summary(root: Path, tenants: list[ImportedTenant], *, added: bool = False) -> str:
    counts = summary_counts(tenants)
    legacy = f" ({counts['legacy']} legacy)" if counts["legacy"] else ""
    kept = f" (only their files; {ROOT_FILE} unchanged)" if added else ""
    lines = [
        f"Imported {len(tenants)} tenant(s) into {root}{kept}: {counts['BasicAuth']} "
        f"BasicAuth{legacy}, {counts['Microsoft365']} Microsoft365, {counts['absent']} "
        "without configuration (email: absent).",
    ]
    secrets = [t for t in tenants if t.secret_ref]
    if secrets:
        lines += [
            "",
            "Set these secret references before plan and apply (the API never returns them):",
        ]
        lines += [f"  {t.secret_ref}  ({t.name} email.{t.secret_field})" for t in secrets]
    legacy_names = [t.name for t in tenants if t.legacy]
    if legacy_names:
        lines += [
            "",
            f"{len(legacy_names)} legacy configuration(s) made by the deprecated PATCH "
            f"({', '.join(legacy_names[:5])}{', ...' if len(legacy_names) > 5 else ''}) "
            "will plan as an update: apply migrates them with a PUT.",
        ]
    lines += ["", f"Next: qlik-email validate {root} && qlik-email plan {root}"]
    return "\n".join(lines) + "\n"
