"""Secret references and the value type that never prints itself.

A configuration never holds a secret, only a reference to one:

    ${env:NAME}      the environment variable NAME
    ${file:PATH}     the contents of PATH (relative paths start at the config root),
                     without its trailing newline
    ${cmd:COMMAND}   the standard output of COMMAND (split like a shell would, run
                     without a shell), without its trailing newline

A resolved value must be one line: a line break, carriage return or NUL character
(after the final newline is removed) is an error that names the reference only.

References are resolved only when a value is needed, into a `Secret`, whose str,
repr and JSON forms are redacted. `ResolvePolicy` says what a command may do:
`plan` and `drift` never run a `cmd:` reference and never read a file outside the
config repository, so a pull request cannot make them execute code or exfiltrate
files.
"""

from __future__ import annotations

import errno
import functools
import hmac
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import NoReturn

from reconciler.errors import SecretError
from reconciler.paths import is_inside, read_bounded
from reconciler.scrub import REDACTED as REDACTED
from reconciler.scrub import Scrubber
from reconciler.values import valueclass

_REFERENCE = re.compile(r"^\$\{(env|file|cmd):(.+)\}$", re.DOTALL)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BREAKS = re.compile("[\r\n\x00]")
_MAX_FILE_BYTES = 64 * 1024
_CMD_TIMEOUT_S = 30.0


class Secret:
    """A resolved secret. Only `reveal()` gives the value; everything else redacts it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: call this only where a request body or header is built."""
        return self._value

    def __str__(self) -> str:
        return REDACTED

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Secret)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


@valueclass
class SecretRef:
    """A reference such as `${env:NAME}`; the reference text itself is not secret."""

    kind: str
    target: str

    def __str__(self) -> str:
        return f"${{{self.kind}:{self.target}}}"


def parse_reference(text: str) -> SecretRef | None:
    """The reference `text` spells, or None when it is not a reference at all."""
    # A tenant's references are parsed by its checks, its auth and its e-mail
    # settings, one after the other: cached (SecretRef is immutable), a few
    # files' worth, and never a long text (a value may be up to a file's size).
    return _parse_reference(text) if len(text) <= 1024 else _parse_reference.__wrapped__(text)


@functools.lru_cache(maxsize=256)
def _parse_reference(text: str) -> SecretRef | None:
    match = _REFERENCE.match(text.strip())
    if match is None:
        return None
    return SecretRef(kind=match.group(1), target=match.group(2).strip())


def reference_problem(ref: SecretRef) -> str | None:
    """Why a syntactically parsed reference is malformed, or None when it is fine.
    The message never repeats the reference: the caller shows it, made safe."""
    if not ref.target.isprintable():
        return "a secret reference must not hold a line break or another control character"
    if ref.kind == "env" and not _ENV_NAME.match(ref.target):
        return "not a valid environment variable name (letters, digits and '_', no digit first)"
    if ref.kind == "file" and not ref.target:
        return "the file path is empty"
    if ref.kind == "cmd":
        try:
            if not shlex.split(ref.target):
                return "the command is empty"
        except ValueError as exc:
            return f"the command cannot be parsed ({exc})"
    return None


def looks_like_reference(text: str) -> bool:
    """True for anything that starts like `${`: used to explain near-miss references."""
    return text.strip().startswith("${")


@valueclass
class ResolvePolicy:
    """What resolving may do: run commands, read files outside `base_dir`."""

    base_dir: Path
    allow_cmd: bool = False
    confine_files: bool = True
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @classmethod
    def for_repository(cls, base_dir: Path, *, allow_commands: bool) -> ResolvePolicy:
        """The policy of a command on the configuration repository at `base_dir`:
        commands, and files outside the repository, only if `allow_commands`
        (trusted configuration: apply on the main branch)."""
        return cls(base_dir=base_dir, allow_cmd=allow_commands, confine_files=not allow_commands)


class SecretResolver:
    """Resolves references under a policy, once each, and remembers every value seen
    so that output can be scrubbed and masked.

    `on_resolve` is called with each new value the moment it is read, before
    `resolve` returns it, so a caller can mask it (e.g. GitHub's `::add-mask::`)
    before anything that could contain it is printed. The library never prints.
    `scrubber` (by default one of its own) learns every value too: whatever
    scrubs with it removes them, in every spelling, from any text.
    """

    def __init__(
        self,
        policy: ResolvePolicy,
        on_resolve: Callable[[str], None] | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.policy = policy
        self.on_resolve = on_resolve
        self.scrubber = scrubber if scrubber is not None else Scrubber()
        self._cache: dict[SecretRef, Secret] = {}
        self._root: str | None = None
        self._folders: dict[str, str] = {}  # folder -> its real path

    def resolve(self, ref: SecretRef) -> Secret:
        """The secret `ref` points to; raises SecretError with an actionable message."""
        cached = self._cache.get(ref)
        if cached is None:
            value = self._read(ref)
            if not value:
                raise SecretError(f"secret reference {ref} resolved to an empty value")
            if _BREAKS.search(value):
                # A value with a line break could add a header to a request or a line
                # to the Actions log (where masks work line by line): refused, unshown.
                raise SecretError(
                    f"secret reference {ref} resolved to a value with a line break or a NUL "
                    "character: a secret must be one line (only a final newline is removed)"
                )
            self.scrubber.add(value)
            if self.on_resolve is not None:
                self.on_resolve(value)
            cached = self._cache[ref] = Secret(value)
        return cached

    def _read(self, ref: SecretRef) -> str:
        if ref.kind == "env":
            return self._read_env(ref)
        if ref.kind == "file":
            return self._read_file(ref)
        if ref.kind == "cmd":
            return self._run_cmd(ref)
        raise SecretError(f"unknown secret reference kind in {ref}")

    def _read_env(self, ref: SecretRef) -> str:
        value = self.policy.env.get(ref.target)
        if value is None:
            raise SecretError(f"{ref}: environment variable {ref.target} is not set")
        return value

    def _read_file(self, ref: SecretRef) -> str:
        if self._root is None:  # resolved once: realpath costs a system call per component
            self._root = os.path.realpath(self.policy.base_dir)
        target = os.path.join(self._root, os.path.expanduser(ref.target))
        try:
            path, data = self._open_resolved(target)
        except OSError as exc:
            raise SecretError(
                f"{ref}: cannot read {exc.filename or target}: {exc.strerror}"
            ) from None
        if path is None:
            raise SecretError(
                f"{ref}: refusing to read a file outside the configuration repository "
                f"({self._root}) in this command; relative paths start there"
            )
        if len(data) > _MAX_FILE_BYTES:
            raise SecretError(f"{ref}: {path} is larger than {_MAX_FILE_BYTES} bytes")
        try:
            return data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise SecretError(f"{ref}: {path} is not UTF-8 text") from None

    def _open_resolved(self, target: str) -> tuple[str | None, bytes]:
        """The real path of `target` and its first bytes (None when it is outside
        the repository and files are confined). Symlinks anywhere on the path are
        resolved, so a link inside the repository that points outside is caught."""
        folder, name = os.path.split(target)
        if name in ("", ".", ".."):
            path = os.path.realpath(target)
        else:
            # The folder's real path is cached (the secrets of a fleet share a few
            # folders); the file itself is opened without following a link, and a
            # link falls back to resolving the whole path.
            real_folder = self._folders.get(folder)
            if real_folder is None:
                real_folder = self._folders[folder] = os.path.realpath(folder)
            path = os.path.join(real_folder, name)
            if self._confined(path):
                try:
                    return path, read_bounded(path, _MAX_FILE_BYTES, os.O_NOFOLLOW)
                except OSError as exc:
                    if exc.errno != errno.ELOOP:  # ELOOP: the file is a symlink
                        raise
            path = os.path.realpath(target)
        if not self._confined(path):
            return None, b""
        return path, read_bounded(path, _MAX_FILE_BYTES)

    def _confined(self, path: str) -> bool:
        root = self._root
        return not self.policy.confine_files or (root is not None and is_inside(path, root))

    def _run_cmd(self, ref: SecretRef) -> str:
        if not self.policy.allow_cmd:
            raise SecretError(
                f"{ref}: command references are not run by this command "
                "(plan and drift never execute commands from the configuration)"
            )
        try:
            done = subprocess.run(
                shlex.split(ref.target),
                capture_output=True,
                stdin=subprocess.DEVNULL,  # a helper that prompts fails fast instead of hanging
                env=dict(self.policy.env),
                timeout=_CMD_TIMEOUT_S,
                check=False,
                cwd=self.policy.base_dir,
            )
        except (OSError, ValueError) as exc:
            raise SecretError(f"{ref}: cannot run the command: {exc}") from None
        except subprocess.TimeoutExpired:
            raise SecretError(
                f"{ref}: the command took longer than {_CMD_TIMEOUT_S:.0f}s"
            ) from None
        if done.returncode != 0:
            # stderr is left out on purpose: a failing secret helper may print the secret.
            raise SecretError(f"{ref}: the command exited with status {done.returncode}")
        try:
            return done.stdout.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise SecretError(f"{ref}: the command's output is not UTF-8 text") from None
