"""The inventory `qlik-email import` reads: which tenants to import, and how to
authenticate to each.

A CSV file with a header row:

    name,url[,apiKey][,oauthClientId,oauthClientSecret[,oauthScope]]

or a YAML list of mappings with `name`, `url` and an optional `auth` written as
in a tenant file. A tenant without auth of its own uses the `defaults.auth` the
command writes into the root file. Every problem of the file is reported
together, as `file:line:column: message`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.config.build import build_auth
from reconciler.config.checks import (
    example_reference,
    normalize_url,
    reference_text_problem,
    secret_problem,
    url_identity,
    url_problem,
)
from reconciler.config.quote import quoted, shown
from reconciler.config.source import Document, display_name, read_document
from reconciler.errors import ConfigError, ConfigIssue
from reconciler.values import valueclass

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
CSV_AUTH_COLUMNS = ("apiKey", "oauthClientId", "oauthClientSecret", "oauthScope")
CSV_COLUMNS = ("name", "url", *CSV_AUTH_COLUMNS)
_YAML_KEYS = ("name", "url", "auth")
_MAX_BYTES = 16 * 1024 * 1024


@valueclass
class InventoryEntry:
    """One tenant to import; `auth` is its own `auth` mapping (None: the default)."""

    name: str
    url: str
    auth: Mapping[str, Any] | None = None
    file: str = "--tenant"
    line: int = 1
    column: int = 1

    def issue(self, message: str) -> ConfigIssue:
        return ConfigIssue(self.file, self.line, self.column, message)


def load_inventory(path: Path) -> list[InventoryEntry]:
    """The entries of a CSV (`.csv`) or YAML (`.yaml`, `.yml`) inventory; raises
    ConfigError with every problem found."""
    file = display_name(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        entries, issues = _from_yaml(path, file)
    elif path.suffix.lower() == ".csv":
        entries, issues = _from_csv(path, file)
    else:
        message = "the inventory must be a .csv file (name,url) or a .yaml list of tenants"
        raise ConfigError([ConfigIssue(file, 1, 1, message)])
    if issues:
        raise ConfigError(issues)
    return entries


def parse_tenant_option(text: str) -> InventoryEntry:
    """`NAME=URL` from the command line."""
    name, equals, url = text.partition("=")
    if not equals or not name.strip() or not url.strip():
        raise ValueError(f"--tenant must look like NAME=URL, got {quoted(text)}")
    return InventoryEntry(name=name.strip(), url=_url(url))


def entry_issues(entries: Sequence[InventoryEntry]) -> list[ConfigIssue]:
    """What is wrong with the entries: names, URLs, auth, and duplicates."""
    issues: list[ConfigIssue] = []
    names: dict[str, InventoryEntry] = {}
    urls: dict[str, InventoryEntry] = {}
    for entry in entries:
        issues += _own_issues(entry)
        first = names.setdefault(entry.name.casefold(), entry)
        if first is not entry:
            issues.append(entry.issue(f"tenant name {quoted(entry.name)} is listed twice"))
        if url_problem(entry.url) is None:
            first = urls.setdefault(url_identity(entry.url), entry)
            if first is not entry:
                listed = f"url {shown(entry.url)} is already listed for {shown(first.name)}"
                issues.append(entry.issue(listed))
    return issues


def auth_issues(auth: Mapping[str, Any], tenant: str | None) -> list[str]:
    """Why an `auth` mapping is not usable: secrets must be references."""
    found = []
    api_key, oauth = auth.get("apiKey"), auth.get("oauth")
    if api_key is not None:
        path = ("auth", "apiKey")
        found.append(secret_problem("auth.apiKey", str(api_key), example_reference(tenant, path)))
    if isinstance(oauth, Mapping):
        secret = str(oauth.get("clientSecret", ""))
        path = ("oauth", "clientSecret")
        example = example_reference(tenant, path)
        found.append(secret_problem("auth.oauth.clientSecret", secret, example))
        client_id = str(oauth.get("clientId", ""))
        found.append(reference_text_problem("auth.oauth.clientId", client_id))
    problems = [problem for problem in found if problem]
    if not problems and build_auth(dict(auth)) is None:
        problems.append("auth must be either apiKey, or oauth with clientId and clientSecret")
    return problems


def _own_issues(entry: InventoryEntry) -> list[ConfigIssue]:
    issues = []
    if not NAME.match(entry.name):
        issues.append(
            entry.issue(
                f"tenant name {quoted(entry.name)} must be 1 to 63 letters, digits, '.', '_' "
                "or '-', starting with a letter or digit"
            )
        )
    who = shown(entry.name)
    problem = url_problem(entry.url)
    if problem:
        issues.append(entry.issue(f"{who}: {problem}"))
    if entry.auth is not None:
        issues += [entry.issue(f"{who}: {p}") for p in auth_issues(entry.auth, entry.name)]
    return issues


def _from_csv(path: Path, file: str) -> tuple[list[InventoryEntry], list[ConfigIssue]]:
    text = _read(path, file)
    reader = csv.DictReader(text.splitlines())
    header = [column.strip() for column in reader.fieldnames or []]
    unknown = [column for column in header if column not in CSV_COLUMNS]
    missing = [column for column in ("name", "url") if column not in header]
    if unknown or missing:
        message = (
            f"the CSV header must name the columns name and url, optionally "
            f"{', '.join(CSV_AUTH_COLUMNS)}; got {shown(', '.join(header)) or 'nothing'}"
        )
        return [], [ConfigIssue(file, 1, 1, message)]
    reader.fieldnames = header
    entries = []
    for row in reader:
        values = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
        if not any(values.values()):
            continue
        entries.append(
            InventoryEntry(
                name=values.get("name", ""),
                url=_url(values.get("url", "")),
                auth=_csv_auth(values),
                file=file,
                line=reader.line_num,
            )
        )
    return entries, entry_issues(entries)


def _csv_auth(values: Mapping[str, str]) -> dict[str, Any] | None:
    if values.get("apiKey"):
        return {"apiKey": values["apiKey"]}
    if values.get("oauthClientId") or values.get("oauthClientSecret"):
        oauth = {
            "clientId": values.get("oauthClientId", ""),
            "clientSecret": values.get("oauthClientSecret", ""),
        }
        if values.get("oauthScope"):
            oauth["scope"] = values["oauthScope"]
        return {"oauth": oauth}
    return None


def _from_yaml(path: Path, file: str) -> tuple[list[InventoryEntry], list[ConfigIssue]]:
    doc, issues = read_document(path, file)
    if doc is None or issues:
        return [], issues
    if not isinstance(doc.data, list):
        message = "the inventory must be a list of tenants, each with name and url"
        return [], [doc.issue((), message)]
    entries: list[InventoryEntry] = []
    problems: list[ConfigIssue] = []
    for index, item in enumerate(doc.data):
        entry = _yaml_entry(doc, index, item, problems)
        if entry is not None:
            entries.append(entry)
    return entries, problems + entry_issues(entries)


def _yaml_entry(
    doc: Document, index: int, item: Any, issues: list[ConfigIssue]
) -> InventoryEntry | None:
    line, column = doc.position((index,))
    if not isinstance(item, dict):
        issues.append(doc.issue((index,), "each tenant must be a mapping with name and url"))
        return None
    unknown = [key for key in item if key not in _YAML_KEYS]
    for key in unknown:
        message = f"unknown key {quoted(key)}: a tenant has name, url and optionally auth"
        issues.append(doc.issue((index, key), message, key=True))
    name, url, auth = item.get("name"), item.get("url"), item.get("auth")
    if not isinstance(name, str) or not isinstance(url, str):
        issues.append(doc.issue((index,), "each tenant needs a name and a url (strings)"))
        return None
    if auth is not None and not isinstance(auth, dict):
        issues.append(doc.issue((index, "auth"), "auth must be a mapping (apiKey or oauth)"))
        return None
    if unknown:
        return None
    return InventoryEntry(name, _url(url), auth, doc.file, line, column)


def _url(text: str) -> str:
    """The URL as the config will hold it; left as written when it is not valid."""
    return normalize_url(text) if url_problem(text) is None else text.strip()


def _read(path: Path, file: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigIssue(file, 1, 1, f"cannot read: {exc.strerror}")]) from None
    if len(data) > _MAX_BYTES:
        raise ConfigError([ConfigIssue(file, 1, 1, "the inventory is larger than 16 MiB")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue(file, 1, 1, "the inventory is not UTF-8 text")]) from None
