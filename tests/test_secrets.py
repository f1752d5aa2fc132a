"""Secret references: parsing, resolving under a policy, and a value that never prints."""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import shlex
import sys
from pathlib import Path

import pytest

from reconciler import secrets
from reconciler.errors import SecretError
from reconciler.secrets import (
    REDACTED,
    ResolvePolicy,
    Secret,
    SecretRef,
    SecretResolver,
    looks_like_reference,
    parse_reference,
    reference_problem,
)

VALUE = "hunter2-do-not-print"


def _python(code: str) -> str:
    """A `${cmd:...}` target running `code` with this interpreter."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def _resolver(tmp_path: Path, **policy: object) -> SecretResolver:
    return SecretResolver(ResolvePolicy(base_dir=tmp_path, **policy))  # type: ignore[arg-type]


# Parsing


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("${env:ACME_SMTP_PASSWORD}", "env", "ACME_SMTP_PASSWORD"),
        ("${file:secrets/acme.txt}", "file", "secrets/acme.txt"),
        ("${cmd:pass show qlik/acme}", "cmd", "pass show qlik/acme"),
        ("  ${env:PADDED}  ", "env", "PADDED"),
    ],
)
def test_parse_reference_reads_kind_and_target(text: str, kind: str, target: str) -> None:
    assert parse_reference(text) == SecretRef(kind, target)


@pytest.mark.parametrize("text", ["hunter2", "${vault:x}", "${env:X", "$env:X", "${env:}", ""])
def test_parse_reference_returns_none_for_anything_else(text: str) -> None:
    assert parse_reference(text) is None


def test_reference_prints_as_written() -> None:
    assert str(SecretRef("env", "ACME")) == "${env:ACME}"


@pytest.mark.parametrize(
    ("ref", "phrase"),
    [
        (SecretRef("env", "1BAD"), "not a valid environment variable name"),
        (SecretRef("env", "HAS SPACE"), "not a valid environment variable name"),
        (SecretRef("cmd", "   "), "the command is empty"),
        (SecretRef("cmd", "echo 'unclosed"), "cannot be parsed"),
        (SecretRef("file", ""), "the file path is empty"),
    ],
)
def test_reference_problem_explains_malformed_references(ref: SecretRef, phrase: str) -> None:
    problem = reference_problem(ref)
    assert problem is not None and phrase in problem


@pytest.mark.parametrize(
    "ref", [SecretRef("env", "_OK_1"), SecretRef("file", "a.txt"), SecretRef("cmd", "echo x")]
)
def test_reference_problem_accepts_sound_references(ref: SecretRef) -> None:
    assert reference_problem(ref) is None


def test_looks_like_reference_spots_near_misses() -> None:
    assert looks_like_reference(" ${vault:x}")
    assert not looks_like_reference("hunter2")


# Resolving: env


def test_env_reference_resolves_from_the_policy_environment(tmp_path: Path) -> None:
    resolver = _resolver(tmp_path, env={"ACME_PW": VALUE})
    assert resolver.resolve(SecretRef("env", "ACME_PW")).reveal() == VALUE


def test_missing_env_var_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="environment variable ACME_PW is not set"):
        _resolver(tmp_path, env={}).resolve(SecretRef("env", "ACME_PW"))


def test_empty_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="empty value"):
        _resolver(tmp_path, env={"ACME_PW": ""}).resolve(SecretRef("env", "ACME_PW"))


def test_resolving_twice_reuses_the_value_and_remembers_it(tmp_path: Path) -> None:
    env = {"ACME_PW": VALUE}
    resolver = _resolver(tmp_path, env=env)
    first = resolver.resolve(SecretRef("env", "ACME_PW"))
    env["ACME_PW"] = "changed"
    assert resolver.resolve(SecretRef("env", "ACME_PW")) is first
    assert resolver.scrubber.scrub(f"x {VALUE} y") == f"x {REDACTED} y"  # learnt once


# Resolving: file


def test_file_reference_is_read_relative_to_the_base_dir(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "acme.txt").write_text(VALUE + "\n")
    secret = _resolver(tmp_path).resolve(SecretRef("file", "secrets/acme.txt"))
    assert secret.reveal() == VALUE


def test_file_outside_the_base_dir_is_refused_when_confined(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(VALUE)
    base = tmp_path / "repo"
    base.mkdir()
    for target in (str(outside), "../outside.txt"):
        with pytest.raises(SecretError, match="outside the configuration repository") as caught:
            _resolver(base).resolve(SecretRef("file", target))
        assert f"({base.resolve()})" in str(caught.value)  # names the root paths start at


def test_symlink_out_of_the_base_dir_is_refused_when_confined(tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text(VALUE)
    base = tmp_path / "repo"
    base.mkdir()
    (base / "link.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(SecretError, match="outside the configuration repository"):
        _resolver(base).resolve(SecretRef("file", "link.txt"))


def test_symlinked_folder_out_of_the_base_dir_is_refused_when_confined(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "key.txt").write_text(VALUE)
    base = tmp_path / "repo"
    base.mkdir()
    (base / "secrets").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(SecretError, match="outside the configuration repository"):
        _resolver(base).resolve(SecretRef("file", "secrets/key.txt"))


def test_symlink_within_the_base_dir_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "key.txt").write_text(VALUE)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "link.txt").symlink_to(tmp_path / "real" / "key.txt")
    assert _resolver(tmp_path).resolve(SecretRef("file", "keys/link.txt")).reveal() == VALUE


def test_file_replaced_by_an_outward_link_after_its_folder_was_seen_is_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "outside.txt").write_text(VALUE)
    base = tmp_path / "repo"
    (base / "keys").mkdir(parents=True)
    (base / "keys" / "a.txt").write_text("first-value")
    (base / "keys" / "b.txt").symlink_to(tmp_path / "outside.txt")
    resolver = _resolver(base)
    assert resolver.resolve(SecretRef("file", "keys/a.txt")).reveal() == "first-value"
    with pytest.raises(SecretError, match="outside the configuration repository"):
        resolver.resolve(SecretRef("file", "keys/b.txt"))


def test_a_folder_is_not_a_secret_file(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    with pytest.raises(SecretError, match="cannot read"):
        _resolver(tmp_path).resolve(SecretRef("file", "keys"))


def test_file_outside_the_base_dir_is_read_when_not_confined(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(VALUE)
    base = tmp_path / "repo"
    base.mkdir()
    secret = _resolver(base, confine_files=False).resolve(SecretRef("file", str(outside)))
    assert secret.reveal() == VALUE


def test_missing_file_is_a_secret_error(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="cannot read"):
        _resolver(tmp_path).resolve(SecretRef("file", "nope.txt"))


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(b"x" * (secrets._MAX_FILE_BYTES + 1))
    with pytest.raises(SecretError, match="larger than"):
        _resolver(tmp_path).resolve(SecretRef("file", "big.txt"))


def test_non_utf8_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    (tmp_path / "bin.txt").write_bytes(b"\xffhunter2")
    with pytest.raises(SecretError, match="not UTF-8") as caught:
        _resolver(tmp_path).resolve(SecretRef("file", "bin.txt"))
    assert "hunter2" not in str(caught.value)


# Resolving: cmd


def test_cmd_reference_is_refused_by_the_default_policy(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    ref = SecretRef("cmd", _python(f"open({str(marker)!r}, 'w')"))
    with pytest.raises(SecretError, match="never execute commands"):
        _resolver(tmp_path).resolve(ref)
    assert not marker.exists()


def test_cmd_reference_resolves_to_its_output_when_allowed(tmp_path: Path) -> None:
    ref = SecretRef("cmd", _python(f"print({VALUE!r})"))
    assert _resolver(tmp_path, allow_cmd=True).resolve(ref).reveal() == VALUE


def test_cmd_runs_in_the_base_dir(tmp_path: Path) -> None:
    ref = SecretRef("cmd", _python("import os; print(os.getcwd())"))
    resolved = _resolver(tmp_path, allow_cmd=True).resolve(ref).reveal()
    assert os.path.samefile(resolved, tmp_path)


def test_failing_cmd_reports_its_status_but_not_its_stderr(tmp_path: Path) -> None:
    # The value is assembled at run time, so that the command text itself does not hold it.
    half = len(VALUE) // 2
    code = (
        f"import sys; value = {VALUE[:half]!r} + {VALUE[half:]!r}; "
        "sys.stderr.write(value); sys.stdout.write(value); sys.exit(3)"
    )
    with pytest.raises(SecretError, match="exited with status 3") as caught:
        _resolver(tmp_path, allow_cmd=True).resolve(SecretRef("cmd", _python(code)))
    assert VALUE not in str(caught.value)


def test_missing_command_is_a_secret_error(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="cannot run the command"):
        _resolver(tmp_path, allow_cmd=True).resolve(SecretRef("cmd", "no-such-command-xyz"))


def test_slow_cmd_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_CMD_TIMEOUT_S", 0.2)
    ref = SecretRef("cmd", _python("import time; time.sleep(10)"))
    with pytest.raises(SecretError, match="took longer"):
        _resolver(tmp_path, allow_cmd=True).resolve(ref)


# The Secret value never prints itself


def test_secret_is_redacted_in_str_repr_and_formatting() -> None:
    secret = Secret(VALUE)
    rendered = [
        str(secret),
        repr(secret),
        format(secret),
        format(secret, ">40"),
        f"{secret}",
        f"{secret!r}",
        f"{secret!s}",
        "%s %r" % (secret, secret),  # noqa: UP031 - the old style must redact too
        "{} {!r}".format(secret, secret),  # noqa: UP032
        repr([secret]),
        repr({"password": secret}),
    ]
    for text in rendered:
        assert VALUE not in text
        assert REDACTED in text


def test_secret_in_logs_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("password is %s", Secret(VALUE))
    assert VALUE not in caplog.text


def test_secret_cannot_be_serialised_to_json() -> None:
    with pytest.raises(TypeError) as caught:
        json.dumps({"password": Secret(VALUE)})
    assert VALUE not in str(caught.value)


def test_secret_cannot_be_pickled_or_copied() -> None:
    for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="cannot be pickled"):
            attempt(Secret(VALUE))


def test_secret_reveals_its_value_only_on_request() -> None:
    assert Secret(VALUE).reveal() == VALUE


def test_secrets_compare_by_value_without_exposing_it() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret("other")
    assert hash(Secret(VALUE)) == hash(Secret("other"))  # the hash says nothing about the value
