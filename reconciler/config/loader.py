"""The configuration loading stage: find the files, parse and validate each one,
merge the root file's defaults into every tenant, and build the DesiredState, or
raise one ConfigError that lists every problem of every file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from reconciler.config.build import (
    Defaults,
    auth_secret_path,
    build_settings,
    build_tenant,
    uniqueness_issues,
)
from reconciler.config.checks import check_root, check_tenant, host_issues
from reconciler.config.files import (
    Expansion,
    GlobLimitError,
    expand,
    new_expansion,
    pattern_problem,
)
from reconciler.config.narrow import narrow_settings, widening_issues
from reconciler.config.policy import policy_issues
from reconciler.config.quote import quoted
from reconciler.config.schema import schema_findings, schema_issues
from reconciler.config.source import (
    DisplayNames,
    Document,
    JsonPath,
    Pos,
    display_name,
    read_document,
)
from reconciler.config.words import kind_of
from reconciler.errors import ConfigError, ConfigIssue
from reconciler.model import SECRET_FIELD, DesiredState, Settings, SourcePos, TenantSpec
from reconciler.paths import is_inside

ROOT_NAMES = ("qlik-email.yaml", "qlik-email.yml")
DEFAULT_GLOBS = ("tenants/*.yaml", "tenants/*.yml")
_AUTH = ("defaults", "auth")
OUTSIDE = (
    "is a symbolic link to a path outside the configuration repository: not read "
    "(configuration files must be inside the repository)"
)


def load_config(
    path: str | Path,
    *,
    allowed_hosts: Sequence[str] | None = None,
    trusted: Settings | None = None,
) -> DesiredState:
    """Load the configuration repository at `path` into the desired state.

    `path` is a directory holding `qlik-email.yaml` (or `.yml`), or the root file
    itself. `allowed_hosts`, when given, replaces `settings.allowedHosts` (the CLI
    passes QLIK_EMAIL_ALLOWED_HOSTS). `trusted`, when given, is the settings of
    the trusted base (`--base`): they apply, narrowed by the file's, before any
    tenant is checked against them, and a list entry of the file's that would
    widen them is an error (`config.narrow`). Raises ConfigError listing every problem
    found in every file; never resolves a secret.
    """
    return ConfigLoad(path, allowed_hosts=allowed_hosts, trusted=trusted).finish()


class ConfigLoad:
    """A configuration repository loaded one tenant file at a time (`load_config`
    in steps), so that a caller can start working on the first tenants while
    the last files are parsed.

    Opening it reads the root file, expands the tenant globs and settles the
    settings (`root`, `settings`, `files`); iterating loads the tenant files in
    order; `finish` loads what is left, runs the checks across files and
    returns the DesiredState, or raises the one ConfigError of every problem.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        allowed_hosts: Sequence[str] | None = None,
        trusted: Settings | None = None,
    ) -> None:
        """Raises ConfigError at once only when `path` is not there, or holds two root files."""
        root_file, root_dir = _locate(Path(path))
        self.issues: list[ConfigIssue] = []
        self._root = _load_root(root_file, root_dir, self.issues)
        self._defaults = _validate_root(self._root, self.issues)
        self.files = _tenant_files(self._root, root_dir, root_file, self.issues)
        # A broken root file is reported once: the checks that depend on its
        # settings (allowed hosts, policy) would otherwise fail every tenant.
        self._root_sound = self._root is not None and not self.issues
        settings = (
            build_settings(self._root)
            if self._root is not None and self._root_sound
            else Settings()
        )
        if trusted is not None:
            if self._root is not None and not self.issues:
                self.issues.extend(widening_issues(self._root, trusted))
            settings = narrow_settings(settings, trusted)
        if allowed_hosts is not None:
            settings = replace(settings, allowed_hosts=tuple(allowed_hosts))
        self.settings = settings
        self.root = root_dir.resolve()
        self._names = DisplayNames()
        self._docs: list[Document] = []
        self._tenants: list[TenantSpec] = []
        self._loaded = 0
        self._finished = False

    @property
    def ok(self) -> bool:
        """No problem found so far (in the root file or any tenant file loaded)."""
        return not self.issues and self._root is not None

    def __iter__(self) -> Iterator[TenantSpec | None]:
        """Load the tenant files not loaded yet, one per step: the tenant a file
        builds, or None when the file has a problem (added to `issues`)."""
        while self._loaded < len(self.files):
            path = self.files[self._loaded]
            self._loaded += 1
            doc, tenant, found = _load_tenant(
                path, self._names(path), self._defaults, self.settings if self._root_sound else None
            )
            self.issues.extend(found)
            if doc is not None:
                self._docs.append(doc)
            if tenant is not None:
                self._tenants.append(tenant)
            yield tenant if not found else None

    def finish(self) -> DesiredState:
        """Load the files left, check across files (names and URLs are unique) and
        return the desired state; raise ConfigError listing every problem."""
        for _ in self:
            pass
        if not self._finished:
            self._finished = True
            self.issues.extend(uniqueness_issues(self._docs))
        if not self.ok:
            raise ConfigError(self.issues, self._notes())
        return DesiredState(
            root=self.root,
            tenants=tuple(sorted(self._tenants, key=lambda tenant: tenant.name)),
            settings=self.settings,
        )

    def _notes(self) -> tuple[str, ...]:
        if self._root_sound or not self.files:
            return ()
        return (
            "the checks that depend on the root file's settings (settings.allowedHosts, "
            "settings.policy) were skipped for every tenant file: fix the root file first",
        )


def _locate(path: Path) -> tuple[Path | None, Path]:
    """The root file (None when a directory has none) and the directory it governs."""
    if not _exists(path):
        raise ConfigError([ConfigIssue(display_name(path), 1, 1, "no such file or directory")])
    if not os.path.isdir(path):
        return path, path.parent
    found = [path / name for name in ROOT_NAMES if _exists(path / name)]
    if len(found) > 1:
        message = f"both {ROOT_NAMES[0]} and {ROOT_NAMES[1]} exist: keep one"
        raise ConfigError([ConfigIssue(display_name(found[1]), 1, 1, message)])
    return (found[0] if found else None), path


def _exists(path: Path) -> bool:
    # lstat: a dangling symbolic link is there too (reading it says why not).
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # it is there; reading it will report why it cannot be read
    return True


def _load_root(
    root_file: Path | None, root_dir: Path, issues: list[ConfigIssue]
) -> Document | None:
    """The root document (empty when there is no root file), or None when unusable."""
    if root_file is None:
        return Document(display_name(root_dir), root_dir, {})
    if not is_inside(os.path.realpath(root_file), os.path.realpath(root_dir)):
        issues.append(_outside_issue(root_file))
        return None
    doc, found = read_document(root_file, display_name(root_file))
    issues.extend(found)
    if doc is None:
        return None
    if doc.data is None:  # an empty root file asks for nothing but the defaults
        return Document(doc.file, doc.path, {})
    if not isinstance(doc.data, dict):
        issues.append(
            doc.issue((), "the root file must be a mapping (keys such as defaults and tenants)")
        )
        return None
    if {"name", "url"} <= doc.data.keys():
        message = f"this is a tenant file: pass the directory that holds {ROOT_NAMES[0]}"
        issues.append(doc.issue((), message))
        return None
    return doc


def _validate_root(root: Document | None, issues: list[ConfigIssue]) -> Defaults:
    """Validate the root document; return its defaults, `usable` only when they are
    sound, since merging broken defaults would repeat one mistake in every tenant."""
    if root is None:
        return Defaults(root_file=ROOT_NAMES[0], usable=False)
    issues.extend(check_root(root))
    usable = True
    for path, issue in schema_findings(root, "root"):
        issues.append(issue)
        usable = usable and path[:1] != ("defaults",)
    email = root.get("defaults", "email")
    return Defaults(
        root_file=ROOT_NAMES[0] if root.path.is_dir() else root.file,
        email=email if isinstance(email, dict) else {},
        auth=root.get("defaults", "auth"),
        usable=usable,
        auth_source=SourcePos(
            root.file, *root.position(auth_secret_path(root.get("defaults", "auth"), _AUTH))
        ),
        secret_sources={
            name: SourcePos(root.file, *root.position(("defaults", "email", name)))
            for name in SECRET_FIELD.values()
            if isinstance(email, dict) and name in email
        },
    )


def _tenant_files(
    root: Document | None, root_dir: Path, root_file: Path | None, issues: list[ConfigIssue]
) -> list[Path]:
    """The tenant files the root's `tenants` globs match, in a stable order; none at
    all when the globs break the bounds of `reconciler.config.files`, and never one
    reached through a symbolic link that leads outside the repository."""
    spec = root.get("tenants") if root is not None else None
    if spec is None:
        patterns: list[tuple[JsonPath, str]] = [((), pattern) for pattern in DEFAULT_GLOBS]
    else:
        patterns = [(("tenants",), spec)] if isinstance(spec, str) else _items(spec)
    skip = root_file.name if root_file is not None else None
    expansion = new_expansion(root_dir, skip)
    at: JsonPath = ()
    try:
        for at, pattern in patterns:
            _expand(root, expansion, at, pattern, issues, spec is not None)
    except GlobLimitError as exc:
        issues.append(_root_issue(root, root_dir, at, str(exc)))
        return []
    if spec is None and not expansion.matches and not expansion.outside and root is not None:
        issues.append(_no_tenants(root, root_file))
    issues.extend(_outside_issue(expansion.path(rel)) for rel in sorted(expansion.outside))
    return expansion.found()


def _expand(
    root: Document | None,
    expansion: Expansion,
    at: JsonPath,
    pattern: str,
    issues: list[ConfigIssue],
    explicit: bool,
) -> None:
    """Expand one glob into `expansion`; an issue at `at` when it is refused or, if
    the root file names it (`explicit`), when it matches nothing."""
    problem = pattern_problem(pattern)
    if problem is not None:
        message = f"tenants glob {quoted(pattern)} {problem}"
        issues.append(_root_issue(root, expansion.path(()), at, message))
        return
    outside = len(expansion.outside)
    if not expand(expansion, pattern) and explicit and len(expansion.outside) == outside:
        message = f"tenants glob {quoted(pattern)} matches no file"
        issues.append(_root_issue(root, expansion.path(()), at, message))


def _root_issue(root: Document | None, root_dir: Path, at: JsonPath, message: str) -> ConfigIssue:
    if root is None:
        return ConfigIssue(display_name(root_dir), 1, 1, message)
    return root.issue(at, message)


def _outside_issue(path: Path) -> ConfigIssue:
    return ConfigIssue(display_name(path), 1, 1, OUTSIDE)


def _items(spec: object) -> list[tuple[JsonPath, str]]:
    if not isinstance(spec, list):
        return []  # the schema has reported it
    return [(("tenants", i), item) for i, item in enumerate(spec) if isinstance(item, str) and item]


def _no_tenants(root: Document, root_file: Path | None) -> ConfigIssue:
    globs = " and ".join(DEFAULT_GLOBS)
    if root_file is None:
        message = f"no {ROOT_NAMES[0]} here, and no tenant files ({globs} match nothing)"
    else:
        message = f"no tenant files: {globs} match nothing (set tenants: to where they are)"
    return root.issue((), message)


_Loaded = tuple[Document | None, TenantSpec | None, list[ConfigIssue]]


def _load_tenant(path: Path, file: str, defaults: Defaults, settings: Settings | None) -> _Loaded:
    """One tenant file (named `file` in issues): its document, the tenant it
    builds and every issue found (the checks against `settings` only when the
    root file's settings are known)."""
    doc, issues = _read_tenant(path, file)
    if doc is None:
        return None, None, issues
    tenant = build_tenant(doc, defaults, issues, sound=not issues)
    if tenant is not None and settings is not None:
        issues.extend(host_issues(doc, tenant.url, settings.allowed_hosts))
        issues.extend(policy_issues(doc, tenant, settings.policy))
    return _identity(doc), tenant, issues


def _identity(doc: Document) -> Document:
    """The part of a tenant document that the checks across files need (its name
    and url, and where they are written): the rest is not kept in memory."""
    data = doc.data if isinstance(doc.data, dict) else {}
    keys = [key for key in ("name", "url") if key in data]
    positions: dict[JsonPath, Pos] = {(key,): doc.position((key,)) for key in keys}
    return Document(doc.file, doc.path, {key: data[key] for key in keys}, values=positions)


def _read_tenant(path: Path, file: str) -> tuple[Document | None, list[ConfigIssue]]:
    """One tenant document and its own issues (schema and single-value checks)."""
    doc, issues = read_document(path, file)
    if doc is None:
        return None, issues
    if doc.data is None:
        return None, [
            *issues,
            doc.issue((), "the tenant file is empty: it needs name, url and email"),
        ]
    if not isinstance(doc.data, dict):
        got = kind_of(doc.data)  # not the value: this file may be anything, even a key
        message = f"a tenant file must be a mapping with name, url and email, got {got}"
        return None, [*issues, doc.issue((), message)]
    return doc, [*issues, *schema_issues(doc, "tenant"), *check_tenant(doc)]
