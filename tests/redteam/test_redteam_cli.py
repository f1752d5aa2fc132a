"""The real CLI against hostile tenant servers: every command, every format, with
and without --debug, in and out of GitHub Actions. Every output and every file
written is checked for secrets in any spelling, forged workflow commands,
Markdown that could render HTML, ping someone or close a fence, and control
characters; every tenant must have its report entry, and the run its exit code."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import Result, run_cli
from redteam_checks import (
    control_characters,
    csv_problems,
    forged_commands,
    html_problems,
    leaks,
    markdown_problems,
)

from reconciler.sandbox import Sandbox

pytestmark = pytest.mark.slow

# Special characters make the URL, JSON and base64 spellings all differ; the
# space makes "collapsed" and "split" whitespace differ from the secret.
PASSWORD = 'S3cr3t/p@ss+w0 rd"q\\%2F&=x<y>'
ECHO = ("echo-secret", "payloads")
HOSTILE = {
    "echo-key": ECHO,  # BasicAuth, API key
    "echo-oauth": ECHO,  # Microsoft365, OAuth with the client id as a reference
    # Free text only (verify and test-mail messages, errorCode, statusReason):
    # the configuration converges and the test e-mail answer is hostile too.
    "echo-messages": (*ECHO, "messages-only"),
    "api-errors": ECHO,  # every API call a 400 whose title echoes
    "refused": ECHO,  # OAuth: the token endpoint refuses, echoing the client
    "endless": ("endless",),
    "huge": ("huge",),
    "deep": ("deep",),
}
NAMES = [*HOSTILE, "clean"]
ECHOED = ("echo-key", "echo-oauth", "echo-messages")  # answer, with strings spiked
OAUTH = ("echo-oauth", "refused")
TIMEOUT_S = 2


@dataclass
class Fleet:
    sandbox: Sandbox
    repo: Path
    out: Path
    runs: list[tuple[str, Result]] = field(default_factory=list)

    def secrets(self) -> list[str]:
        values = [PASSWORD, *self.sandbox.access_tokens()]
        for tenant in self.sandbox.tenants:
            values += [*tenant.secrets(), tenant.oauth_client_id]
        return values

    def hostile_faults(self) -> None:
        """Every tenant's part, afresh (which also forgets the secrets it was sent)."""
        faults = self.sandbox.faults
        faults.clear()
        for name, kinds in HOSTILE.items():
            errors = {400: 1.0} if name == "api-errors" else None
            token_errors = {401: 1.0} if name == "refused" else None
            faults.set(hostile=kinds, errors=errors, token_errors=token_errors, tenant=name)

    def cli(self, *argv: str, github: bool = False) -> Result:
        self.hostile_faults()
        previous = os.environ.get("GITHUB_ACTIONS")
        os.environ["GITHUB_ACTIONS"] = "true" if github else "false"
        started = time.monotonic()
        try:
            result = run_cli(*argv)
        finally:
            if previous is None:
                del os.environ["GITHUB_ACTIONS"]
            else:
                os.environ["GITHUB_ACTIONS"] = previous
        elapsed = time.monotonic() - started
        # Each tenant gets at most 1 + 4 retries of TIMEOUT_S, plus backoff.
        assert elapsed < 5 * TIMEOUT_S + 10, (argv, elapsed)
        self.runs.append((" ".join(argv), result))
        return result


def write_repo(sandbox: Sandbox, root: Path) -> Path:
    """API keys for most tenants; OAuth with `clientId: ${file:...}` for OAUTH."""
    sandbox.write_config(root, microsoft365=["echo-oauth"])
    oauth = sandbox.write_config(root.parent / "oauth", auth="oauth", microsoft365=["echo-oauth"])
    for name in OAUTH:
        tenant = sandbox.tenant(name)
        (root / ".secrets" / f"{name}.oauth").write_bytes(
            (oauth / f".secrets/{name}.oauth").read_bytes()
        )
        (root / ".secrets" / f"{name}.id").write_text(tenant.oauth_client_id + "\n")
        text = (oauth / "tenants" / f"{name}.yaml").read_text()
        reference = json.dumps(f"${{file:.secrets/{name}.id}}")
        (root / "tenants" / f"{name}.yaml").write_text(
            text.replace(json.dumps(tenant.oauth_client_id), reference)
        )
    root_file = root / "qlik-email.yaml"  # the sandbox's root file has a settings block
    text = root_file.read_text().replace("settings:\n", f"settings:\n  timeout: {TIMEOUT_S}\n", 1)
    root_file.write_text(text)
    return root


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("redteam")
    with Sandbox(names=NAMES, seed=13, rate_limits=False) as sandbox:
        sandbox.set_smtp_password("echo-key", PASSWORD)
        repo = write_repo(sandbox, base / "config")
        out = base / "out"
        out.mkdir()
        yield Fleet(sandbox, repo, out)


def assert_clean(fleet: Fleet, result: Result, *files: Path) -> None:
    """Every check of the suite, on what one run printed and wrote."""
    secrets = fleet.secrets()
    printed = {"stdout": result.stdout, "stderr": result.stderr}
    for name, text in printed.items():
        assert not leaks(text, secrets), (name, leaks(text, secrets))
        assert not forged_commands(text), (name, forged_commands(text)[:3])
        assert not control_characters(text), (name, control_characters(text))
    for path in files:
        text = path.read_text()
        assert not leaks(text, secrets), (path.name, leaks(text, secrets))
        if path.suffix == ".md":
            assert not markdown_problems(text), (path.name, markdown_problems(text)[:5])
            assert not forged_commands(text), (path.name, forged_commands(text)[:3])
        if path.suffix == ".json":
            json.loads(text)
        if path.suffix == ".html":
            assert not html_problems(text), (path.name, html_problems(text)[:5])
        if path.suffix == ".csv":
            assert not csv_problems(text), (path.name, csv_problems(text)[:5])


def tenants_in(document: dict[str, object]) -> set[str]:
    entries = document.get("tenants") or document.get("results") or []
    assert isinstance(entries, list)
    return {str(entry.get("tenant") or entry.get("name")) for entry in entries}


FORMATS = ("text", "json", "markdown")
MODES = [
    (fmt, debug, github)
    for github in (False, True)
    for fmt, debug in zip(FORMATS, (True, False, True), strict=True)
]


@pytest.mark.parametrize(("fmt", "debug", "github"), MODES)
def test_plan_apply_drift_show_leak_nothing_and_forge_nothing(
    fleet: Fleet, fmt: str, debug: bool, github: bool
) -> None:
    tag = f"{fmt}-{debug}-{github}"
    flags = ("--debug",) if debug else ()
    repo, out = str(fleet.repo), fleet.out
    plan_file = out / f"plan-{tag}.json"
    plan = fleet.cli(*flags, "plan", repo, "--format", fmt, "--out", str(plan_file), github=github)
    assert plan.code == 1, plan  # some tenants cannot be read
    assert tenants_in(json.loads(plan_file.read_text())) == set(NAMES)
    assert_clean(fleet, plan, plan_file)
    if fmt == "markdown":
        assert not markdown_problems(plan.stdout), markdown_problems(plan.stdout)[:5]

    report, markdown = out / f"apply-{tag}.json", out / f"apply-{tag}.md"
    fleet.sandbox.seed("echo-messages", None)  # converged last time: give apply work
    apply = fleet.cli(
        *flags, "apply", repo, "--auto-approve", "--test-email", "ops@example.com",
        "--format", fmt, "--report", str(report), "--markdown", str(markdown), github=github,
    )  # fmt: skip
    assert apply.code == 1, apply
    document = json.loads(report.read_text())
    assert tenants_in(document) == set(NAMES)
    results = {r["name"]: r for r in document["tenants"]}
    outcomes = {name: r["outcome"] for name, r in results.items()}
    # The PUT went through; the hostile answers after it are not a failed write.
    for name in ECHOED:
        assert outcomes[name] == "verify-failed", outcomes
    assert results["echo-messages"]["verified"] is True, results["echo-messages"]
    assert results["echo-messages"]["testEmail"].startswith("not sent: ")
    assert outcomes["clean"] in ("applied", "unchanged"), outcomes
    assert_clean(fleet, apply, report, markdown)

    report, markdown = out / f"drift-{tag}.json", out / f"drift-{tag}.md"
    page, table = out / f"drift-{tag}.html", out / f"drift-{tag}.csv"
    drift = fleet.cli(
        *flags, "drift", repo, "--verify", "--format", fmt, "--report", str(report),
        "--markdown", str(markdown), "--html", str(page), "--csv", str(table), github=github,
    )  # fmt: skip
    assert drift.code == 1, drift
    assert tenants_in(json.loads(report.read_text())) == set(NAMES)
    assert page.read_text().count('<tr data-status="') == len(NAMES)
    assert len(table.read_text().splitlines()) == len(NAMES) + 1
    assert_clean(fleet, drift, report, markdown, page, table)

    markdown = out / f"show-{tag}.md"
    show = fleet.cli("show", str(plan_file), "--format", fmt, "--markdown", str(markdown))
    assert show.code == 0, show
    assert_clean(fleet, show, markdown)


@pytest.mark.parametrize("github", [False, True])
def test_sharded_plans_merge_without_leaks(fleet: Fleet, github: bool) -> None:
    shards = [fleet.out / f"shard-{i}-{github}.json" for i in (1, 2)]
    for index, path in enumerate(shards, 1):
        result = fleet.cli(
            "plan", str(fleet.repo), "--shard", f"{index}/2", "--out", str(path), github=github
        )
        assert_clean(fleet, result, path)
    for fmt in FORMATS:
        merged = fleet.cli("report", "merge", *map(str, shards), "--format", fmt, github=github)
        assert merged.code == 1, merged  # plan reports with unreadable tenants
        assert_clean(fleet, merged)
        if fmt == "json":
            assert tenants_in(json.loads(merged.stdout)) == set(NAMES)


@pytest.mark.parametrize("readable", [False, True])
def test_import_from_hostile_tenants_writes_no_secret(
    fleet: Fleet, tmp_path: Path, readable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All tenants (some cannot be read: nothing is written), then only those
    that answer (files are written from their hostile live values)."""
    monkeypatch.setenv("QLIK_EMAIL_ALLOWED_HOSTS", "127.0.0.1")  # loopback is not special
    tenants = [t for t in fleet.sandbox.tenants if not readable or t.name in (*ECHOED, "clean")]
    rows = [f"{t.name},{t.url},${{env:RT_KEY_{i}}}" for i, t in enumerate(tenants)]
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("name,url,apiKey\n" + "\n".join(rows) + "\n")
    for i, tenant in enumerate(tenants):
        os.environ[f"RT_KEY_{i}"] = tenant.api_key
    target = tmp_path / "imported"
    try:
        result = fleet.cli("--debug", "import", str(target), "--inventory", str(inventory))
    finally:
        for i in range(len(tenants)):
            os.environ.pop(f"RT_KEY_{i}", None)
    written = [p for p in target.rglob("*") if p.is_file()]
    # Unreadable tenants mean nothing is written; readable ones answer hostile
    # values that do not validate, and import validates before it writes: nothing.
    assert result.code == 1 and written == [], result
    assert_clean(fleet, result, *written)
