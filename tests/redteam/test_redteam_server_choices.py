"""What a server chooses cannot reach further than its own text: a token
endpoint that issues a configuration value as its access token (`short-token`)
redacts nothing from the reviewed configuration or from other tenants, while
a real token, echoed, is still scrubbed; and a senderName full of invisible
characters (`invisible`) is printed as visible escapes in every output. The
real CLI, against the sandbox on loopback."""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Result, run_cli
from redteam_checks import control_characters, forged_commands, leaks, markdown_problems

from reconciler.sandbox import Sandbox
from reconciler.sandbox.hostile import INVISIBLE_NAME, SHORT_TOKEN

pytestmark = pytest.mark.slow

REDACTED = "(sensitive value)"
OLD_HOST = "smtp.old.example"
HOSTILE = {
    # Issues SHORT_TOKEN (127.0.0.1, every tenant's SMTP host) and echoes it back.
    "censor": ("short-token", "echo-secret"),
    "echo": ("echo-secret",),  # a real token, echoed in every spelling
    "victim": ("invisible",),  # its live senderName is INVISIBLE_NAME
}


@dataclass
class Fleet:
    sandbox: Sandbox
    repo: Path

    def real_tokens(self) -> list[str]:
        return [t for t in self.sandbox.access_tokens() if t != SHORT_TOKEN]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with Sandbox(names=[*HOSTILE, "bystander"], seed=5, rate_limits=False) as sandbox:
        for name in sandbox_names(sandbox):
            sandbox.seed(name, sandbox.basic_auth_body(name))
        # The pull request moves the victim from OLD_HOST to 127.0.0.1.
        sandbox.seed("victim", sandbox.basic_auth_body("victim", serverAddress=OLD_HOST))
        repo = sandbox.write_config(tmp_path_factory.mktemp("choices") / "config", auth="oauth")
        yield Fleet(sandbox, repo)


def sandbox_names(sandbox: Sandbox) -> list[str]:
    return [tenant.name for tenant in sandbox.tenants]


def hostile_faults(sandbox: Sandbox) -> None:
    """Every tenant's part, afresh: a tenant also echoes what it was sent since
    its faults were set, and a token of an earlier run is no secret of this one."""
    sandbox.faults.clear()
    for name, kinds in HOSTILE.items():
        sandbox.faults.set(hostile=kinds, tenant=name)


def plan(fleet: Fleet, fmt: str, tmp_path: Path, github: bool = False) -> Result:
    hostile_faults(fleet.sandbox)
    previous = os.environ.get("GITHUB_ACTIONS")
    os.environ["GITHUB_ACTIONS"] = "true" if github else "false"
    try:
        # --debug with the text format: the log and the report on one run.
        debug = ["--debug"] if fmt == "text" else []
        result = run_cli(
            *debug,
            "plan",
            str(fleet.repo),
            "--format",
            fmt,
            "--markdown",
            str(tmp_path / "plan.md"),
        )
    finally:
        if previous is None:
            del os.environ["GITHUB_ACTIONS"]
        else:
            os.environ["GITHUB_ACTIONS"] = previous
    assert result.code == 0, result.stderr
    return result


def invisible(text: str) -> list[str]:
    """Control, format and separator characters (by Unicode category) but tab and
    newline, and the zero-width space that follows an @ to keep a mention inert."""
    found = set()
    for at, char in enumerate(text):
        if char in "\t\n" or (char == "\u200b" and at and text[at - 1] == "@"):
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            found.add(f"U+{ord(char):04X}")
    return sorted(found)


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_a_token_chosen_by_the_server_redacts_nothing_of_the_configuration(
    fleet: Fleet, fmt: str, tmp_path: Path
) -> None:
    result = plan(fleet, fmt, tmp_path)
    out = result.stdout
    if fmt == "json":
        changes = {
            entry["name"]: {c["field"]: c for c in entry.get("changes", [])}
            for entry in json.loads(out)["tenants"]
        }
        victim = changes["victim"]["serverAddress"]
        assert (victim["before"], victim["after"]) == (OLD_HOST, SHORT_TOKEN)
        # The censor's own answer is scrubbed of its token, but only its own:
        # the configuration's value stands.
        censor = changes["censor"]["serverAddress"]
        assert censor["before"].startswith(REDACTED) and censor["after"] == SHORT_TOKEN
    else:
        # The pull request's change, from another tenant's server, printed whole.
        assert f'serverAddress = "{OLD_HOST}" -> "{SHORT_TOKEN}"' in " ".join(out.split())
    assert fleet.real_tokens()  # the echo tenant was issued one, and echoed it
    for text in (out, result.stderr, (tmp_path / "plan.md").read_text()):
        assert not leaks(text, fleet.real_tokens())
        assert not forged_commands(text)


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_invisible_characters_from_a_server_are_shown_as_escapes(
    fleet: Fleet, fmt: str, tmp_path: Path
) -> None:
    result = plan(fleet, fmt, tmp_path, github=True)
    markdown = (tmp_path / "plan.md").read_text()
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr), ("md", markdown)):
        assert not invisible(text), (name, invisible(text))
        assert not control_characters(text), name
        assert not forged_commands(text), name
    assert not markdown_problems(markdown)
    # Shown, not dropped: the escapes of the soft hyphen, the line separator
    # and a tag character, in the report on stdout.
    shown = result.stdout.replace("\\\\", "\\")
    if fmt == "json":
        senders = [
            c["before"]
            for entry in json.loads(result.stdout)["tenants"]
            for c in entry.get("changes", [])
            if c["field"] == "senderName" and entry["name"] == "victim"
        ]
        assert senders == [INVISIBLE_NAME]
        assert "\\u00ad" in shown and "\\u2028" in shown and "\\udb40\\udc61" in shown
    else:
        assert "\\xad" in shown and "\\u2028::warning::" in shown and "\\U000e0061" in shown


def test_annotations_show_invisible_characters_as_escapes(fleet: Fleet, tmp_path: Path) -> None:
    # Annotations carry configuration errors only: a pull request's file whose
    # invalid value holds the same characters.
    repo = tmp_path / "repo"
    for path in fleet.repo.rglob("*"):
        if path.is_file():
            target = repo / path.relative_to(fleet.repo)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    tenant = repo / "tenants" / "victim.yaml"
    bad = json.dumps("qlik" + INVISIBLE_NAME + "-not-an-address")
    tenant.write_text(tenant.read_text().replace('"qlik@victim.example"', bad))
    os.environ["GITHUB_ACTIONS"] = "true"
    try:
        result = run_cli("validate", str(repo))
    finally:
        os.environ["GITHUB_ACTIONS"] = "false"
    assert result.code == 1
    annotations = [line for line in result.stderr.split("\n") if line.startswith("::error ")]
    assert annotations and any("victim.yaml" in line for line in annotations)
    assert not invisible(result.stderr) and not invisible(result.stdout)
    assert not forged_commands(result.stderr) and not forged_commands(result.stdout)
