"""Configuration files are hostile input: `validate` run through the real CLI must
stay inside the repository, stop unbounded globs quickly, never quote a foreign
file, and print every value it quotes bounded and on one line that cannot start a
GitHub Actions workflow command."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from conftest import run_cli
from test_loader import DATA

from reconciler.config.files import MAX_DEPTH, MAX_ENTRIES
from reconciler.config.quote import MAX_QUOTED

SECRET = "sk-live-7f3a9c1e5b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7HOSTILE0KEY\n"
    "-----END PRIVATE KEY-----\n"
)
# The file property escapes ':' and ',', so a forged file name cannot end it early.
OUR_ANNOTATION = re.compile(r"^::error file=[^:,]*,line=[0-9]+,col=[0-9]+,title=qlik-email::")
HOSTILE_CASES = [
    "key-with-newline",
    "escape-sequence-value",
    "bidi-control-value",
    "reference-with-newline",
    "long-email-address",
]


def _repo(tmp_path: Path, case: str = "valid-minimal") -> Path:
    target = tmp_path / "repo"
    shutil.copytree(DATA / case, target, symlinks=True)
    return target


def _set_globs(repo: Path, *globs: str) -> None:
    root = repo / "qlik-email.yaml"
    listed = "".join(f"  - {_quote(glob)}\n" for glob in globs)
    root.write_text(root.read_text() + f"tenants:\n{listed}")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _validate(repo: Path, monkeypatch: pytest.MonkeyPatch, *, actions: bool = False):
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GITHUB_ACTIONS", "true" if actions else "false")
    return run_cli("validate", ".")


def assert_safe_output(text: str, *, actions: bool) -> None:
    """No line starts with `::` but our own annotations (and only in Actions), whose
    properties are escaped, and no line holds a raw control character."""
    for line in text.split("\n"):
        assert line.isprintable(), repr(line)
        if line.startswith("::"):
            assert actions and OUR_ANNOTATION.match(line), repr(line)


@pytest.mark.parametrize(
    ("pattern", "phrase"),
    [
        ("/etc/*", "must be relative"),
        ("/**", "must be relative"),
        ("../outside/*.yaml", "must not contain '..'"),
        ("tenants/../../outside/*.yaml", "must not contain '..'"),
        ("tenants\\..\\..\\outside\\*.yaml", "must not contain '..'"),
    ],
)
def test_tenant_glob_outside_the_repository_is_refused_at_its_line(
    tmp_path, monkeypatch, pattern, phrase
):
    repo = _repo(tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "stolen.yaml").write_text(SECRET + "\n")
    _set_globs(repo, "tenants/*.yaml", pattern)
    started = time.perf_counter()
    result = _validate(repo, monkeypatch)
    assert time.perf_counter() - started < 2
    assert result.code == 1, result
    assert "qlik-email.yaml:10:5: tenants glob" in result.stderr and phrase in result.stderr
    assert SECRET[:12] not in result.stdout + result.stderr


def test_symlink_to_a_file_outside_is_refused_by_its_name_never_read(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    (tmp_path / "api.key").write_text(SECRET + "\n")
    (tmp_path / "private.pem").write_text(PEM)
    (repo / "tenants" / "key.yaml").symlink_to(tmp_path / "api.key")
    (repo / "tenants" / "pem.yaml").symlink_to(tmp_path / "private.pem")
    result = _validate(repo, monkeypatch)
    assert result.code == 1, result
    assert "tenants/key.yaml:1:1: is a symbolic link to a path outside" in result.stderr
    assert "tenants/pem.yaml:1:1: is a symbolic link to a path outside" in result.stderr
    for leak in (SECRET[:12], "BEGIN PRIVATE", "MIIEvQ", str(tmp_path / "api.key")):
        assert leak not in result.stdout + result.stderr


def test_symlinked_tenants_directory_outside_is_refused(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    shutil.move(repo / "tenants", tmp_path / "elsewhere")
    (repo / "tenants").symlink_to(tmp_path / "elsewhere")
    result = _validate(repo, monkeypatch)
    assert result.code == 1, result
    assert "tenants:1:1: is a symbolic link to a path outside" in result.stderr


def test_symlinked_root_file_outside_is_refused(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    shutil.move(repo / "qlik-email.yaml", tmp_path / "qlik-email.yaml")
    (repo / "qlik-email.yaml").symlink_to(tmp_path / "qlik-email.yaml")
    result = _validate(repo, monkeypatch)
    assert result.code == 1, result
    assert "qlik-email.yaml:1:1: is a symbolic link to a path outside" in result.stderr


def test_symlinks_inside_the_repository_are_followed(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    (repo / "shared").mkdir()
    shutil.move(repo / "tenants" / "acme.yaml", repo / "shared" / "acme.yaml")
    (repo / "tenants" / "acme.yaml").symlink_to("../shared/acme.yaml")
    result = _validate(repo, monkeypatch)
    assert result.code == 0, result


def test_glob_looking_at_too_many_entries_stops_quickly(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    junk = repo / "junk"
    junk.mkdir()
    for index in range(MAX_ENTRIES + 1):
        (junk / f"{index}.txt").touch()
    _set_globs(repo, "**/*.yaml")
    started = time.perf_counter()
    result = _validate(repo, monkeypatch)
    assert time.perf_counter() - started < 2
    assert result.code == 1, result
    assert f"more than {MAX_ENTRIES:,} files and directories" in result.stderr
    assert "qlik-email.yaml:9:5:" in result.stderr


def test_glob_going_too_deep_is_an_error(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    (repo / Path(*["d"] * (MAX_DEPTH + 1))).mkdir(parents=True)
    _set_globs(repo, "**/*.yaml")
    result = _validate(repo, monkeypatch)
    assert result.code == 1, result
    assert f"deeper than {MAX_DEPTH} directories" in result.stderr


def test_double_star_does_not_follow_a_symlink_loop(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    (repo / "tenants" / "loop").symlink_to(".")
    (repo / "tenants" / "up").symlink_to("..")
    _set_globs(repo, "tenants/**/*.yaml")
    started = time.perf_counter()
    result = _validate(repo, monkeypatch)
    assert time.perf_counter() - started < 2
    assert result.code == 0, result


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("api-key.yaml", SECRET + "\n"),
        ("pem.yaml", PEM),
        ("binary.yaml", "\x00\x01" + SECRET),
        ("broken.yaml", f"token: [{SECRET}\n"),
        ("directive.yaml", f"%{SECRET}\n"),
        ("tag.yaml", f"!{SECRET}! x\n"),
        ("anchor.yaml", f"a: &{SECRET} x\n"),
    ],
)
def test_a_file_that_is_not_a_configuration_is_never_quoted(tmp_path, monkeypatch, name, content):
    repo = _repo(tmp_path)
    (repo / "tenants" / name).write_text(content)
    result = _validate(repo, monkeypatch)
    assert result.code == 1, result
    assert f"tenants/{name}:" in result.stderr
    for leak in (SECRET[3:15], "BEGIN PRIVATE", "MIIEvQ"):
        assert leak not in result.stdout + result.stderr


def test_yaml_error_keeps_its_description_but_not_the_line(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    (repo / "tenants" / "acme.yaml").write_text(f"name: acme\nkey: {SECRET} % : x\n")
    result = _validate(repo, monkeypatch)
    assert result.code == 1, result
    assert "tenants/acme.yaml:2:" in result.stderr and "invalid YAML" in result.stderr
    assert SECRET[3:15] not in result.stderr


def test_quoted_values_are_cut_to_the_documented_length(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    long = "x" * 300
    (repo / "tenants" / "acme.yaml").write_text(
        f"name: a{long}\nurl: https://{long}/path\nemail:\n  username: u\n"
        f"  password: ${{env:ACME_SMTP_PASSWORD}}\n  emailAddress: {long}@acme\n"
        f"  senderName: {{a: 1}}\n  serverAddress: s{long}.example.com\n"
    )
    result = _validate(repo, monkeypatch)
    assert result.code == 1, result
    assert result.stderr.count("...") >= 4, result.stderr
    assert "x" * MAX_QUOTED not in result.stderr
    assert max(len(line) for line in result.stderr.splitlines()) < 300


@pytest.mark.parametrize("actions", [False, True], ids=["terminal", "github-actions"])
@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_no_line_of_the_output_can_be_forged(case, actions, tmp_path, monkeypatch):
    result = _validate(_repo(tmp_path, case), monkeypatch, actions=actions)
    assert result.code == 1, result
    assert_safe_output(result.stdout + result.stderr, actions=actions)
    assert ("::error file=tenants/acme.yaml," in result.stderr) == actions


@pytest.mark.parametrize("actions", [False, True], ids=["terminal", "github-actions"])
def test_hostile_keys_values_and_file_names_are_escaped(tmp_path, monkeypatch, actions):
    repo = _repo(tmp_path)
    _set_globs(repo, "tenants/*.yaml", "*.yml")
    hostile = {
        "tenants/a\n::error file=x::forged.yaml": "name: [\n",
        "tenants/\x1b]8;;evil\x07x.yaml": "- 1\n",
        "tenants/\u202egnp.yaml": "name: 1\n",
        "::warning::pwned.yml": "name: [\n",
        " ::stop-commands::tok.yml": "name: [\n",
    }
    for name, text in hostile.items():
        (repo / name).write_text(text)
    (repo / "tenants" / "b.yaml").write_text(
        '"\\n::error::key": 1\nname: "b\\r\\n::stop-commands::x"\n'
        'url: "https://b.eu.qlikcloud.com/\\e[31m"\n'
        'email:\n  securityType: "\\u2028::warning::x\\u202e"\n'
    )
    result = _validate(repo, monkeypatch, actions=actions)
    assert result.code == 1, result
    output = result.stdout + result.stderr
    assert_safe_output(output, actions=actions)
    assert "tenants/a\\n::error file=x::forged.yaml:2:1:" in output
    assert "./::warning::pwned.yml:2:1:" in output
    assert "./ ::stop-commands::tok.yml:2:1:" in output
    assert "tenants/\\x1b]8;;evil\\x07x.yaml:1:1:" in output
    assert "tenants/\\u202egnp.yaml:1:7:" in output
    if actions:
        # The annotation's file property is escaped as GitHub's toolkit does.
        assert "::error file=./%3A%3Awarning%3A%3Apwned.yml,line=2," in result.stderr


def test_symlink_escape_is_refused_in_plan_too(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    (tmp_path / "api.key").write_text(SECRET)
    (repo / "tenants" / "key.yaml").symlink_to(tmp_path / "api.key")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("QLIK_API_KEY", "unused")
    result = run_cli("plan", ".")
    assert result.code == 1, result
    assert "is a symbolic link to a path outside" in result.stderr
    assert SECRET[3:15] not in result.stdout + result.stderr
    assert os.path.exists(tmp_path / "api.key")


def test_a_directory_listed_by_two_globs_counts_once(tmp_path, monkeypatch):
    # The default globs tenants/*.yaml and tenants/*.yml both list tenants/: a fleet
    # of 15,000 tenant files stays within the bound.
    repo = _repo(tmp_path)
    for index in range(15_000):
        (repo / "tenants" / f"{index}.txt").touch()
    result = _validate(repo, monkeypatch)
    assert result.code == 0, result
