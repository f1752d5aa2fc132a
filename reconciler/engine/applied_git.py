"""The record of applied secrets kept in git (`--state git`): a file on a ref of
the configuration repository's remote, outside every branch a pull request
changes.

apply fetches the ref, and once it knows it will write to a tenant, pushes a
commit to it (`claim`: the push permission is proven before any tenant is
touched); after the run it merges what it applied into the newest record and
pushes that. Every push carries a lease on the commit it builds on, so a push
that raced another is refused by the remote; it is then rebuilt on the newer
record and pushed again. plan and drift only fetch.

Only git plumbing is used (`hash-object`, `commit-tree` on a temporary index,
`push`): the working tree, the index, HEAD and the branches of the checkout are
never touched, and no hook of the repository runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from reconciler.documents.state import parse_record, record_text
from reconciler.engine.applied import merged
from reconciler.engine.applied_store import Loaded
from reconciler.errors import StateFileError
from reconciler.model import AppliedRecord, AppliedSecret
from reconciler.values import valueclass

DEFAULT_REMOTE = "origin"
DEFAULT_REF = "refs/heads/qlik-email-state"
RECORD_NAME = "applied.json"
ATTEMPTS = 5  # pushes of one record before a run of races is an error
_GIT_TIMEOUT_S = 120
_IDENTITY = {"GIT_AUTHOR_NAME": "qlik-email", "GIT_AUTHOR_EMAIL": "qlik-email@localhost"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


@valueclass
class GitLocation:
    """Which remote, and which ref on it, holds the record."""

    remote: str = DEFAULT_REMOTE
    ref: str = DEFAULT_REF

    def __post_init__(self) -> None:
        for what, value in (("--state-remote", self.remote), ("--state-ref", self.ref)):
            if not _NAME.match(value) or ".." in value or value.endswith((".lock", "/")):
                raise StateFileError(f"{what} {value!r} is not a git remote or ref name")

    @classmethod
    def of(cls, remote: str | None, ref: str | None) -> GitLocation:
        """`remote` and `ref` as given on the command line (None: the default); a
        short ref name is a branch (`qlik-email-state`: refs/heads/qlik-email-state)."""
        ref = ref or DEFAULT_REF
        if not ref.startswith("refs/"):
            ref = f"refs/heads/{ref}"
        return cls(remote or DEFAULT_REMOTE, ref)


@valueclass
class _Read:
    """The ref's commit (None: the ref does not exist) and the record's text in
    it (None: that commit holds no record for this configuration)."""

    tip: str | None
    text: str | None


class GitStore:
    """The record at `<configuration directory>/applied.json` (relative to the
    repository's top) on a ref of a remote of the repository holding `config`."""

    def __init__(self, config: str | Path, location: GitLocation) -> None:
        directory = Path(config)
        if not directory.is_dir():
            directory = directory.parent
        self.location = location
        try:
            self.top = Path(self._git(directory, "rev-parse", "--show-toplevel").strip())
        except StateFileError as exc:
            raise StateFileError(
                f"--state git: {config} is not in a git checkout, whose remote would "
                f"keep the record ({exc})"
            ) from None
        prefix = self._git(directory, "rev-parse", "--show-prefix").strip()
        self.path = f"{prefix}{RECORD_NAME}"
        self._tip: str | None = None  # the commit the next push builds on

    @property
    def where(self) -> str:
        return f"{self.location.remote} {self.location.ref}:{self.path}"

    def load(self) -> Loaded:
        try:
            read = self._fetch()
        except StateFileError as exc:
            return Loaded(
                AppliedRecord(),
                f"the record at {self.where} could not be read ({exc}): every secret "
                "is treated as not recorded, and re-sent once (safe)",
            )
        self._tip = read.tip
        if read.text is None:
            return Loaded(
                AppliedRecord(),
                f"no record at {self.where} yet: every secret is treated as not "
                "recorded, and re-sent once (safe); apply creates it",
            )
        try:
            return Loaded(parse_record(read.text, self.where))
        except StateFileError as exc:
            return Loaded(
                AppliedRecord(),
                f"{exc}: every secret is treated as not recorded, and re-sent once "
                "(safe); apply replaces it",
            )

    def claim(self) -> None:
        """Push a commit holding the record as it is (or an empty record when
        there is none yet): a remote that refuses it, or no permission to push,
        stops apply here, before any tenant is written to."""
        self._update(None, "qlik-email apply: starting")

    def save(self, entries: Mapping[str, AppliedSecret]) -> bool:
        names = ", ".join(sorted(entries))
        message = f"qlik-email apply: recorded {len(entries)} tenant(s)\n\n{names}\n"
        return self._update(entries, message)

    # -- git ------------------------------------------------------------------

    def _update(self, entries: Mapping[str, AppliedSecret] | None, message: str) -> bool:
        """Build a commit on the newest record and push it with a lease; on a
        race, again on the record that won. `entries` None: the record as it is
        (a claim, always pushed); else the record with `entries` merged, pushed
        only when that changes it."""
        read = _Read(self._tip, self._text(self._tip))
        for attempt in range(ATTEMPTS):
            record = self._lenient(read.text)
            if entries is None:
                text = read.text if read.text is not None else record_text(record)
            else:
                new = merged(record, entries)
                if new == record and read.text is not None:
                    return False
                text = record_text(new)
            commit = self._commit(read.tip, text, message)
            pushed = self._push(read.tip, commit)
            if pushed.returncode == 0:
                self._tip = commit
                return True
            newest = self._fetch()
            if newest.tip == read.tip:  # not a race: the remote refused the push
                raise StateFileError(
                    f"cannot push the record to {self.where}: {_reason(pushed)} (check "
                    "the push permission and the ref's protection rules)"
                )
            read = newest
            time.sleep(0.1 * (attempt + 1))
        raise StateFileError(
            f"cannot push the record to {self.where}: {ATTEMPTS} pushes in a row "
            "lost a race with another apply"
        )

    def _lenient(self, text: str | None) -> AppliedRecord:
        """The record in `text`; an empty one when there is none or it cannot be
        used (load said so: apply replaces it)."""
        if text is None:
            return AppliedRecord()
        try:
            return parse_record(text, self.where)
        except StateFileError:
            return AppliedRecord()

    def _fetch(self) -> _Read:
        """The ref's commit on the remote, fetched, and the record in it."""
        remote, ref = self.location.remote, self.location.ref
        listed = self._git(self.top, "ls-remote", "--", remote, ref)
        tips = [line.split("\t")[0] for line in listed.splitlines() if line.endswith(f"\t{ref}")]
        if not tips:
            return _Read(None, None)
        self._git(self.top, "fetch", "--quiet", "--no-tags", "--no-recurse-submodules", remote, ref)
        tip = self._git(self.top, "rev-parse", "--verify", "FETCH_HEAD^{commit}").strip()
        return _Read(tip, self._text(tip))

    def _text(self, tip: str | None) -> str | None:
        if tip is None:
            return None
        listed = self._git(self.top, "ls-tree", "--name-only", tip, "--", self.path)
        if not listed.strip():
            return None
        return self._git(self.top, "cat-file", "blob", f"{tip}:{self.path}")

    def _commit(self, parent: str | None, text: str, message: str) -> str:
        blob = self._git(self.top, "hash-object", "-w", "--stdin", data=text).strip()
        with tempfile.TemporaryDirectory(prefix="qlik-email-index-") as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent is None:
                self._git(self.top, "read-tree", "--empty", env=index)
            else:
                self._git(self.top, "read-tree", parent, env=index)
            info = f"100644,{blob},{self.path}"
            self._git(self.top, "update-index", "--add", "--cacheinfo", info, env=index)
            tree = self._git(self.top, "write-tree", env=index).strip()
        parents = ["-p", parent] if parent else []
        identity = {**_IDENTITY, "GIT_COMMITTER_NAME": "qlik-email"}
        identity["GIT_COMMITTER_EMAIL"] = _IDENTITY["GIT_AUTHOR_EMAIL"]
        return self._git(
            self.top, "commit-tree", tree, *parents, "-F", "-", data=message, env=identity
        ).strip()

    def _push(self, expected: str | None, commit: str) -> subprocess.CompletedProcess[str]:
        """Push `commit` to the ref if it is still at `expected` (None: absent)."""
        ref = self.location.ref
        lease = f"--force-with-lease={ref}:{expected or ''}"
        args = ("push", "--quiet", "--no-verify", lease, self.location.remote, f"{commit}:{ref}")
        return _run_git(self.top, args, None, None)

    def _git(
        self,
        cwd: Path,
        *args: str,
        data: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """git's output; StateFileError (with git's last line) when it fails."""
        done = _run_git(cwd, args, data, env)
        if done.returncode != 0:
            reason = _reason(done)
            raise StateFileError(f"git {args[0]} failed: {reason}")
        return done.stdout


def _run_git(
    cwd: Path, args: tuple[str, ...], data: str | None, env: Mapping[str, str] | None
) -> subprocess.CompletedProcess[str]:
    # No hook of the repository runs, and git never waits for a password.
    command = ["git", "-c", "core.hooksPath=/dev/null", "-C", str(cwd), *args]
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        return subprocess.run(
            command,
            input=data,
            capture_output=True,
            text=True,
            errors="replace",  # a record that is not UTF-8 is refused by its schema
            env=environment,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StateFileError(f"git {args[0]} failed: {exc}") from None


def _reason(done: subprocess.CompletedProcess[str]) -> str:
    """git's own words for a failure: its first `fatal:` or `error:` line."""
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else f"exit status {done.returncode}"
