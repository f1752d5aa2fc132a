"""The GitHub workflows and the composite action: their security shape, the
examples' calls against the reusable workflows' inputs, the install script, and
their scripts run for real (bash, the installed qlik-email, a sandbox fleet, and a
fake `gh`), step by step as a runner would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitrepo import git as _git

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REUSABLE = {
    name: ROOT / ".github" / "workflows" / f"{name}.yml" for name in ("plan", "apply", "drift")
}
ACTION = ROOT / "action.yml"
INSTALL_SCRIPT = ROOT / "scripts" / "install-tool.sh"
TOOL_DIR = ".qlik-email-tool"  # where the reusable workflows check out qlik-email
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml")) + sorted(
    path  # the examples' workflows, wherever they lie (as scripts/lint-workflows finds them)
    for path in (ROOT / "examples").rglob("*.yml")
    if re.search(r"^jobs:", path.read_text(), re.MULTILINE)
)
PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="the workflows use jq")


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads `on` as true
    return document


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_security_shape(path):
    document = load(path)
    text = path.read_text()
    assert document["permissions"] == {}, "permissions: {} at the top"
    for job in document["jobs"].values():
        assert "permissions" in job, "each job says which permissions it needs"
        for step in job.get("steps", []):
            if "uses" in step:
                assert PIN.match(step["uses"]), f"{step['uses']} is not pinned to a commit"
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            assert "${{" not in str(step.get("run", "")), "expressions go through env:"
        if "uses" in job:
            assert PIN.match(job["uses"]), f"{job['uses']} is not pinned to a commit"
    for line in text.splitlines():
        if re.search(r"uses: \S+@[0-9a-f]{40}", line):
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


EXAMPLE_WORKFLOWS = [path for path in WORKFLOWS if path.is_relative_to(ROOT / "examples")]
TOOL_REF = re.compile(
    r"uses: (?P<repo>[\w.-]+/qlik-email)(?:/\.github/workflows/(?P<workflow>\w+)\.yml)?"
    r"@(?P<sha><[^>]*>|\S+)(?: # (?P<version>\S+))?"
)
ZERO_SHA = "0" * 40


def test_examples_call_the_reusable_workflows_and_the_action_with_known_inputs():
    action_inputs = set(load(ACTION)["inputs"])
    calls = 0
    for path in EXAMPLE_WORKFLOWS:
        for job in load(path)["jobs"].values():
            if "uses" in job:
                calls += 1
                name = re.search(r"/workflows/(\w+)\.yml@", job["uses"]).group(1)
                declared = load(REUSABLE[name])["on"]["workflow_call"]
                assert set(job.get("with", {})) <= set(declared["inputs"]), path
                assert set(job.get("secrets", {})) <= set(declared["secrets"]), path
                assert job.get("with", {}).get("allowed-hosts"), f"{path}: allowed-hosts"
            for step in job.get("steps", []):
                if re.match(r"[\w.-]+/qlik-email@", step.get("uses", "")):
                    calls += 1
                    assert set(step.get("with", {})) <= action_inputs, path
    assert calls >= 5


def test_examples_and_the_guide_pin_one_commit_of_the_workflows():
    """Every reference to the workflows or the action names one repository, an existing
    workflow, the release of pyproject.toml in its comment and, in the examples, one
    commit; the all-zero placeholder always says to replace it."""
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    sources = [*EXAMPLE_WORKFLOWS, ROOT / "docs" / "github-actions.md"]
    repos, shas = set(), set()
    for path in sources:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            found = TOOL_REF.search(line)
            if not found:
                continue
            where = f"{path.relative_to(ROOT)}:{number + 1}"
            repos.add(found["repo"])
            if found["workflow"]:
                assert found["workflow"] in REUSABLE, where
            if path.suffix == ".md":
                assert found["version"] in (None, f"v{version.group(1)}"), where  # None: prose
                assert found["sha"] in ("<SHA>", "<full commit SHA>"), where
                continue
            assert found["version"] == f"v{version.group(1)}", where
            shas.add(found["sha"])
            if found["sha"] == ZERO_SHA:
                before = " ".join(lines[max(0, number - 3) : number])
                assert "Replace the all-zero SHA" in before, f"{where}: say what to put there"
    assert repos == {"qlik-email/qlik-email"}
    assert len(shas) == 1, shas


def _references(path: Path) -> set[str]:
    return set(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", path.read_text()))


def _auth_references(node: Any) -> set[str]:
    """The ${env:NAME} references under the `auth` mappings of a configuration file."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "auth":
                found |= set(re.findall(r"\$\{env:(\w+)\}", json.dumps(value)))
            else:
                found |= _auth_references(value)
    return found


def _passed(path: Path) -> dict[str, set[str]]:
    """The variable names each job of a workflow passes to qlik-email: the NAME=value
    lines of QLIK_EMAIL_ENV, the steps' env:, and for a job whose QLIK_EMAIL_ENV is a
    secret of its environment, the NAME=... lines the workflow's header lists."""
    text = path.read_text()
    header = set(re.findall(r"^#\s+([A-Z][A-Z0-9_]*)=\.\.\.$", text, re.M))
    passed = {}
    for name, job in load(path)["jobs"].items():
        names: set[str] = set()
        dotenv = job.get("secrets", {}).get("QLIK_EMAIL_ENV")
        if dotenv:
            names |= set(re.findall(r"^([A-Z][A-Z0-9_]*)=", dotenv, re.M))
        elif job.get("with", {}).get("environment"):
            names |= header
        for step in job.get("steps", []):
            names |= set(step.get("env", {}))
        passed[name] = names
    return passed


def test_the_examples_workflows_pass_every_secret_their_configuration_references():
    github = ROOT / "examples" / "github"
    files = [github / "qlik-email.yaml", *sorted((github / "tenants").glob("*.yaml"))]
    referenced = set().union(*map(_references, files))
    auth = set().union(*(_auth_references(yaml.safe_load(f.read_text())) for f in files))
    assert auth == {"QLIK_CLIENT_ID", "QLIK_CLIENT_SECRET"}
    assert referenced > auth
    workflows = github / ".github" / "workflows"
    for name in ("plan", "drift"):  # the API credentials only
        (passed,) = _passed(workflows / f"{name}.yml").values()
        assert passed == auth, name
    (applied,) = _passed(workflows / "apply.yml").values()
    assert applied == referenced  # every secret, from the environment's QLIK_EMAIL_ENV
    sharded = _passed(ROOT / "examples" / "sharding" / "plan-sharded.yml")
    assert sharded["plan"] == auth and sharded["merge"] == set()
    for doc in (github / "README.md", ROOT / "docs" / "github-actions.md"):
        dotenv = set(
            re.findall(r"^\s*([A-Z][A-Z0-9_]*)=(?:\.\.\.|6b1e\.\.\.)$", doc.read_text(), re.M)
        )
        assert dotenv == referenced, doc


def test_the_apply_job_is_gated_applies_the_saved_plan_and_never_overlaps():
    """A plan job saves the post-merge plan; the job in the protected environment
    applies that saved plan, alone may push the record, and never overlaps another."""
    jobs = load(REUSABLE["apply"])["jobs"]
    plan, job = jobs["plan"], jobs["apply"]
    assert "environment" not in plan and plan["permissions"] == {"contents": "read"}
    assert job["environment"] == "${{ inputs.environment }}"
    assert job["concurrency"]["cancel-in-progress"] is False
    assert job["permissions"] == {"contents": "write"}
    writers = [n for n, j in jobs.items() if "write" in j["permissions"].values()]
    assert writers == ["apply"]
    assert job["needs"] == "plan" and "needs.plan.outputs.has-changes == 'true'" in job["if"]
    (upload,) = (s for s in plan["steps"] if "upload-artifact@" in s.get("uses", ""))
    assert upload["with"]["path"] == "${{ runner.temp }}/qlik-email-out/plan.json"
    assert upload["with"]["name"] == "${{ steps.artifact.outputs.name }}"
    assert plan["outputs"]["artifact"] == "${{ steps.artifact.outputs.name }}"
    (download,) = (s for s in job["steps"] if "download-artifact@" in s.get("uses", ""))
    assert download["with"] == {
        "name": "${{ needs.plan.outputs.artifact }}",
        "path": "${{ runner.temp }}/qlik-email-plan",
    }
    (apply,) = (s for s in job["steps"] if s.get("name") == "Apply")
    assert apply["env"]["PLAN"] == "${{ runner.temp }}/qlik-email-plan/plan.json"
    assert apply["env"]["STATE"] == "${{ inputs.state }}"
    inputs = load(REUSABLE["apply"])["on"]["workflow_call"]["inputs"]
    assert inputs["state"]["default"] == "git"
    assert {"tenant", "rotate-secrets", "shard", "state-ref"} <= set(inputs)
    (planned,) = (s for s in plan["steps"] if s.get("name") == "Plan")
    assert planned["env"]["STATE"] == "${{ inputs.state }}"
    assert planned["env"]["TENANTS"] == "${{ inputs.tenant }}"
    assert planned["env"]["ROTATE"] == "${{ inputs.rotate-secrets }}"


def test_the_reusable_workflows_install_the_tool_from_their_own_commit():
    """Find the commit the workflow was called at, check it out apart, install from it
    with the install script, and only then check out the caller's configuration."""
    installs = set()
    for name, path in REUSABLE.items():
        workflow = load(path)
        inputs = workflow["on"]["workflow_call"]["inputs"]
        assert inputs["package"]["default"] == "", name  # the source of that commit, by default
        assert "requirements" not in inputs, name  # a file of the caller's checkout: dropped
        job = workflow["jobs"][name]
        steps = [s for s in job["steps"] if s.get("name") != REFUSAL]
        found, tool, _python, install, config = steps[:5]
        assert found["id"] == "tool"
        assert found["env"] == {
            "WORKFLOW_REPOSITORY": "${{ job.workflow_repository }}",
            "WORKFLOW_SHA": "${{ job.workflow_sha }}",
        }
        assert tool["uses"].startswith("actions/checkout@")
        assert tool["with"] == {
            "repository": "${{ steps.tool.outputs.repository }}",
            "ref": "${{ steps.tool.outputs.sha }}",
            "path": TOOL_DIR,
            "persist-credentials": False,
        }
        assert f'bash "$tool/{INSTALL_SCRIPT.relative_to(ROOT)}"' in install["run"]
        assert 'rm -rf "$tool"' in install["run"]
        installs.add(install["run"])
        assert config["uses"].startswith("actions/checkout@")
        assert config["with"]["persist-credentials"] is False  # the caller's repository
        assert set(config["with"]) <= {"persist-credentials", "fetch-depth"}, name
        if name == "plan":  # the pull request's base commit is in the clone (--base)
            assert config["with"]["fetch-depth"] == 0
        assert all("checkout@" not in step.get("uses", "") for step in steps[5:])
    assert len(installs) == 1, "the three workflows install alike"


REFUSAL = "Refuse pull_request_target"


def test_the_plan_workflow_refuses_pull_request_target(tmp_path):
    """Called from pull_request_target it would plan the checked-out base branch
    and show that as the pull request's plan: its first step stops the job."""
    first = load(REUSABLE["plan"])["jobs"]["plan"]["steps"][0]
    assert first["name"] == REFUSAL
    assert first["if"] == "${{ github.event_name == 'pull_request_target' }}"
    runner = Runner("plan", tmp_path, tmp_path, context({}))
    done = runner.run("plan", REFUSAL)
    assert done.returncode == 1
    assert done.stdout.startswith("::error title=qlik-email::") and "plan-forks.yml" in done.stdout


def test_the_action_runs_the_reusable_workflows_steps():
    """The composite action installs from its own directory and runs the very scripts
    of the reusable workflows, with the inputs and environment they read."""
    action = load(ACTION)
    steps = action["runs"]["steps"]
    for step in steps:
        if "uses" in step:
            assert PIN.match(step["uses"]), f"{step['uses']} is not pinned to a commit"
        assert "${{" not in str(step.get("run", "")), "expressions go through env:"
    (install,) = (s for s in steps if s.get("name") == "Install qlik-email")
    assert '"$GITHUB_ACTION_PATH/scripts/install-tool.sh"' in install["run"]
    assert '--source "$GITHUB_ACTION_PATH"' in install["run"]

    inputs = set(action["inputs"])
    shared = {"python-version", "package", "config", "shard", "allowed-hosts"}
    for name, path in REUSABLE.items():
        workflow = load(path)
        declared = set(workflow["on"]["workflow_call"]["inputs"])
        assert declared - {"runs-on", "environment"} <= inputs, name
        assert shared <= declared, name
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                twin = next((s for s in steps if s.get("name") == step.get("name")), None)
                if twin is None or twin is install or "run" not in step:
                    continue
                assert twin["run"] == step["run"], f"{name}: {step['name']}"
                read = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", step["run"]))
                given = set(job.get("env", {})) | set(step.get("env", {}))
                assert read & given <= set(twin.get("env", {})), f"{name}: {step['name']}"
    used = set(re.findall(r"inputs\.([\w-]+)", ACTION.read_text()))
    assert used <= inputs, used - inputs


# -- running the scripts ---------------------------------------------------------------


class Runner:
    """Runs a workflow job's `run:` steps like a GitHub runner: bash -eo pipefail,
    the step's env with its expressions filled in, GITHUB_OUTPUT and friends."""

    def __init__(self, workflow: str | Path, tmp: Path, workspace: Path, context: dict[str, Any]):
        """`workflow`: plan, apply, drift, "action" for the composite action's steps (run
        them with job None), or the path of another workflow."""
        if isinstance(workflow, Path):
            self.document = load(workflow)
        else:
            self.document = load(ACTION if workflow == "action" else REUSABLE[workflow])
        self.tmp, self.workspace, self.context = tmp, workspace, context
        self.context.setdefault("steps", {})
        self.context["runner"] = {"temp": str(tmp / "runner")}
        self.summary = tmp / "summary.md"
        self.summary.touch()
        (tmp / "runner" / "qlik-email-out").mkdir(parents=True, exist_ok=True)
        bin_dir = tmp / "bin"
        bin_dir.mkdir(exist_ok=True)
        gh = bin_dir / "gh"
        gh.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests" / "fake_gh.py"}" "$@"\n'
        )
        gh.chmod(0o755)
        self.state = tmp / "gh.json"
        self.path = os.pathsep.join(
            [str(bin_dir), str(Path(sys.executable).parent), "/usr/bin", "/bin"]
        )

    def value(self, text: str) -> str:
        def one(path: str) -> str:
            node: Any = self.context
            for part in path.strip().split("."):
                node = node.get(part, "") if isinstance(node, dict) else ""
            return (
                "" if node is None else str(node).lower() if isinstance(node, bool) else str(node)
            )

        def lookup(match: re.Match[str]) -> str:  # `a || b`: the first that is not empty
            return next((v for v in map(one, match.group(1).split("||")) if v), "")

        return EXPRESSION.sub(lookup, str(text))

    def run(
        self, job: str | None, step_name: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        spec = self.document["jobs"][job] if job else {"steps": self.document["runs"]["steps"]}
        step = next(s for s in spec["steps"] if s.get("name") == step_name)
        output = self.tmp / "output.txt"
        output.write_text("")
        env = {
            "PATH": self.path,
            "HOME": str(self.tmp),
            "GITHUB_ACTIONS": "true",
            "RUNNER_TEMP": str(self.tmp / "runner"),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_PATH": str(self.tmp / "path.txt"),
            "GITHUB_REPOSITORY": "owner/repo",
            "GITHUB_SHA": self.context["github"]["sha"],
            "GITHUB_REF_NAME": "main",
            "FAKE_GH_STATE": str(self.state),
            # pip installs from the local wheelhouse only: tests use no network
            # but loopback (scripts/check fills the wheelhouse beforehand).
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheelhouse()),
        }
        for scope in (spec.get("env", {}), step.get("env", {})):
            env.update({key: self.value(value) for key, value in scope.items()})
        env.update(extra_env or {})
        script = self.tmp / "step.sh"
        script.write_text(step["run"])
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        outputs = dict(
            line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
        )
        if "id" in step:
            self.context["steps"][step["id"]] = {"outputs": outputs}
        return done

    def gh(self) -> dict[str, Any]:
        return json.loads(self.state.read_text()) if self.state.exists() else {}


def wheelhouse() -> Path:
    """The wheels of every dependency (and of the build tools), which
    `scripts/check` downloads before the tests run (QLIK_EMAIL_WHEELHOUSE)."""
    path = Path(os.environ.get("QLIK_EMAIL_WHEELHOUSE", ROOT / ".venv" / "wheelhouse"))
    if not any(path.glob("*.whl")):
        pytest.fail(f"no wheelhouse at {path}: run `bash scripts/check`, which fills it")
    return path


def context(inputs: dict[str, Any], secrets: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "inputs": inputs,
        "secrets": secrets or {},
        "job": {"workflow_repository": "qlik-email/qlik-email", "workflow_sha": "d" * 40},
        "github": {
            "token": "fake-token",
            "server_url": "https://github.com",
            "repository": "owner/repo",
            "run_id": "4242",
            "sha": "a" * 40,
            "run_attempt": "1",
            "event": {"pull_request": {"number": 7, "head": {"sha": "b" * 40}}},
        },
    }


def env_repo(sandbox, repo: Path) -> dict[str, str]:
    """Point the repo's API keys at ${env:...} and return the NAME=value pairs."""
    values = {}
    for tenant in sandbox.tenants:
        name = tenant.name.upper().replace("-", "_") + "_API_KEY"
        path = repo / "tenants" / f"{tenant.name}.yaml"
        text = path.read_text()
        path.write_text(re.sub(r'apiKey: ".*"', f'apiKey: "${{env:{name}}}"', text))
        values[name] = tenant.api_key
    return values


@needs_jq
def test_plan_workflow_keeps_one_sticky_comment(sandbox, repo, tmp_path):
    values = env_repo(sandbox, repo)
    dotenv = "".join(f"{k}={v}\n" for k, v in values.items())
    inputs = {"config": "config", "shard": "", "comment": True, "allowed-hosts": ""}
    runner = Runner("plan", tmp_path, repo.parent, context(inputs, {"QLIK_EMAIL_ENV": dotenv}))
    assert runner.run("plan", "Validate").returncode == 0
    planned = runner.run("plan", "Plan")
    assert planned.returncode == 0, planned.stderr
    assert runner.context["steps"]["plan"]["outputs"] == {"has-changes": "true"}
    lines = planned.stdout.splitlines()
    errors = planned.stderr.splitlines()
    for secret in values.values():  # masked first by the step, again by qlik-email, and only
        assert errors.index(f"::add-mask::{secret}") < len(values)
        assert errors.count(f"::add-mask::{secret}") == 2
        for line in lines + errors:
            assert secret not in line or line == f"::add-mask::{secret}"
    assert "**Plan: 4 to create" in runner.summary.read_text()
    assert json.loads((tmp_path / "runner" / "qlik-email-out" / "plan.json").read_text())

    assert runner.run("plan", "Comment on the pull request").returncode == 0
    first = runner.gh()["comments"]["7"]
    assert len(first) == 1
    assert first[0]["body"].startswith("<!-- qlik-email-plan config=config shard= -->\n## ")
    assert "https://github.com/owner/repo/actions/runs/4242" in first[0]["body"]

    # Someone else's comment, even with the marker, is left alone.
    state = runner.gh()
    state["comments"]["7"].insert(
        0, {"id": 1, "body": first[0]["body"], "user": {"login": "mallory", "type": "User"}}
    )
    runner.state.write_text(json.dumps(state))
    (repo / "tenants" / "tenant-004.yaml").write_text(
        (repo / "tenants" / "tenant-004.yaml").read_text().replace('"Tenant 004"', '"Four"')
    )
    assert runner.run("plan", "Plan").returncode == 0
    assert runner.run("plan", "Comment on the pull request").returncode == 0
    comments = runner.gh()["comments"]["7"]
    assert len(comments) == 2 and comments[0]["user"]["login"] == "mallory"
    assert '"Four"' in comments[1]["body"] and '"Four"' not in comments[0]["body"]

    # The comment is found by the account of the token in use: a GitHub App's
    # or a person's token keeps its own comment, as the workflow's token does.
    for viewer in ({"login": "qlik-email-app", "type": "Bot"}, {"login": "ops", "type": "User"}):
        state = runner.gh()
        state["viewer"] = viewer
        runner.state.write_text(json.dumps(state))
        for _ in range(2):
            assert runner.run("plan", "Comment on the pull request").returncode == 0
        mine = [c for c in runner.gh()["comments"]["7"] if c["user"]["type"] == viewer["type"]]
        assert [c["user"]["login"] for c in mine][-1].startswith(viewer["login"])
    logins = [c["user"]["login"] for c in runner.gh()["comments"]["7"]]
    assert logins == ["mallory", "github-actions[bot]", "qlik-email-app[bot]", "ops"]
    state = runner.gh()
    state["viewer"] = None  # a token whose account GitHub does not say: never edits
    runner.state.write_text(json.dumps(state))
    unknown = runner.run("plan", "Comment on the pull request")
    assert unknown.returncode == 0 and "::warning" in unknown.stdout
    assert len(runner.gh()["comments"]["7"]) == 5


def _pull_request(sandbox, repo: Path) -> tuple[str, str, str]:
    """Make the repository holding `repo` a git repository with a base commit (the
    configuration as the sandbox wrote it, API keys from ${env:...}) and a pull
    request on top of it that moves tenant-001 to a host of its own, pairs tenant-002
    with tenant-003's API key and renames tenant-004's sender. Returns the base and
    head commits and the NAME=value lines of the keys."""
    values = env_repo(sandbox, repo)
    top = repo.parent
    _git(top, "init", "--quiet", "--initial-branch=main")
    _git(top, "add", repo.name)
    _git(top, "commit", "--quiet", "-m", "base")
    base = _git(top, "rev-parse", "HEAD")
    edits = {
        "tenant-001": (r'url: ".*"', 'url: "http://127.0.0.1:9/t/tenant-001"'),
        "tenant-002": (r"\$\{env:TENANT_002_API_KEY\}", "${env:TENANT_003_API_KEY}"),
        "tenant-004": (r'"Tenant 004"', '"Four"'),
    }
    for name, (pattern, replacement) in edits.items():
        path = repo / "tenants" / f"{name}.yaml"
        text = path.read_text()
        path.write_text(re.sub(pattern, replacement, text, count=1))
        assert path.read_text() != text, name
    _git(top, "commit", "--quiet", "-am", "pull request")
    dotenv = "".join(f"{k}={v}\n" for k, v in values.items())
    return base, _git(top, "rev-parse", "HEAD"), dotenv


def _planned(tmp_path: Path) -> dict[str, Any]:
    plan = json.loads((tmp_path / "runner" / "qlik-email-out" / "plan.json").read_text())
    return {tenant["name"]: tenant for tenant in plan["tenants"]} | {"": plan["summary"]}


@needs_jq
@pytest.mark.parametrize("kind", ["workflow", "action"])
def test_plan_judges_the_pull_request_by_its_base_commit(kind, sandbox, repo, tmp_path):
    """The plan step passes --base with the pull request's base commit from the event:
    the base's allowed hosts apply, and the tenants whose url or credential reference
    the pull request changed are shown but not contacted."""
    base, head, dotenv = _pull_request(sandbox, repo)
    inputs = {"config": "config", "shard": "", "comment": True, "allowed-hosts": ""}
    ctx = context(inputs, {"QLIK_EMAIL_ENV": dotenv})
    ctx["github"]["event"]["pull_request"]["base"] = {"sha": base}
    ctx["github"]["event"]["pull_request"]["head"] = {"sha": head}
    if kind == "action":
        inputs["env"] = dotenv
    runner = Runner("plan" if kind == "workflow" else "action", tmp_path, repo.parent, ctx)
    job = "plan" if kind == "workflow" else None

    found = runner.run(job, "Find the trusted base")
    assert found.returncode == 0, found.stdout + found.stderr
    assert runner.context["steps"]["base"]["outputs"] == {"ref": base}
    validated = runner.run(job, "Validate")
    assert validated.returncode == 0, validated.stderr
    planned = runner.run(job, "Plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    tenants = _planned(tmp_path)
    assert tenants[""]["notRead"] == 2
    assert tenants["tenant-001"]["notRead"] and tenants["tenant-002"]["notRead"]
    assert not tenants["tenant-003"]["notRead"] and not tenants["tenant-003"]["error"]
    assert not tenants["tenant-004"]["notRead"] and not tenants["tenant-004"]["error"]
    assert "127.0.0.1:9" not in planned.stderr  # nothing was sent to the moved tenant

    # Outside a pull request there is no base; a base missing from the clone (and
    # not fetchable: this repository has no remote) is an error that says what to do.
    runner.context["github"]["event"] = {}
    assert runner.run(job, "Find the trusted base").returncode == 0
    assert runner.context["steps"]["base"]["outputs"] == {}
    runner.context["inputs"]["base"] = "e" * 40
    missing = runner.run(job, "Find the trusted base")
    assert missing.returncode == 1 and "fetch-depth: 0" in missing.stdout
    assert runner.context["steps"]["base"]["outputs"] == {}


FORKS = ROOT / "examples" / "github" / "plan-forks.yml"
PR_DIR = "pr"  # where a pull_request_target job checks out the pull request's files


def _triggers(document: dict[str, Any]) -> set[str]:
    on = document["on"]
    return {on} if isinstance(on, str) else set(on)


TARGET_WORKFLOWS = [path for path in WORKFLOWS if "pull_request_target" in _triggers(load(path))]


def test_the_fork_example_is_the_one_pull_request_target_workflow():
    assert TARGET_WORKFLOWS == [FORKS]
    assert _triggers(load(FORKS)) == {"pull_request_target"}
    for path in [*WORKFLOWS, ACTION]:  # every zizmor suppression: one line, one audit, why
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if "zizmor: ignore" not in line:
                continue
            audits = re.findall(r"zizmor: ignore\[([^\]]*)\]", line)
            assert len(audits) == 1 and "," not in audits[0], f"{path}:{number + 1}"
            if path == FORKS:
                assert line == "  pull_request_target: # zizmor: ignore[dangerous-triggers]"
                why = " ".join(lines[number - 2 : number])
                assert "Safe" in why and "pinned tool" in why and "base" in why


@pytest.mark.parametrize("path", TARGET_WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_pull_request_target_jobs_read_the_pull_request_only_as_data(path):
    """A job that holds secrets on pull_request_target checks the pull request out
    apart (pr/, no credentials kept) and runs nothing from it: no run: step at all,
    only pinned checkout and qlik-email steps, the tool installed from the pinned
    action (no `package`), the configuration read from pr/, judged by the base commit."""
    for name, job in load(path)["jobs"].items():
        assert "uses" not in job, f"{name}: the reusable plan workflow would plan the base"
        if "secrets." not in json.dumps(job):
            continue
        assert "defaults" not in job, name
        checkouts, tools = [], []
        for step in job["steps"]:
            assert "run" not in step and "working-directory" not in step, (name, step)
            assert PIN.match(step["uses"]), step["uses"]
            if step["uses"].startswith("actions/checkout@"):
                checkouts.append(step["with"])
            else:
                assert re.match(r"qlik-email/qlik-email@", step["uses"]), step["uses"]
                tools.append(step["with"])
        assert checkouts == [
            {
                "ref": "${{ github.event.pull_request.head.sha }}",
                "path": PR_DIR,
                "fetch-depth": 0,  # the base commit is in the clone, for --base
                "persist-credentials": False,
            }
        ]
        assert tools, name
        for given in tools:
            assert given["command"] == "plan"
            assert given["config"] == PR_DIR or given["config"].startswith(f"{PR_DIR}/")
            assert given["base"] == "${{ github.event.pull_request.base.sha }}"
            assert given["allowed-hosts"]
            assert "package" not in given  # the tool comes from the pinned commit
            others = {k: v for k, v in given.items() if k != "config"}
            assert not any(re.search(rf"(^|/){PR_DIR}(/|$)", str(v)) for v in others.values())


def test_the_action_only_reads_the_configuration_directory():
    """$CONFIG (the pull request's files, in the fork setup) is only ever an argument
    of qlik-email or of `git -C`, or text: no script runs, sources or installs from it."""
    allowed = re.compile(
        r'args=\((validate|plan|drift) "\$CONFIG"|qlik-email validate "\$CONFIG"'
        r'|args\+=\(("\$PLAN" --config )?"\$CONFIG"'
        r'|git -C "\$CONFIG" (cat-file|fetch|rev-parse) |marker="<!-- |echo "::error'
    )
    for step in load(ACTION)["runs"]["steps"]:
        for line in str(step.get("run", "")).splitlines():
            if "CONFIG" in line:
                assert allowed.search(line), line
    comment = next(
        s for s in load(ACTION)["runs"]["steps"] if s.get("name", "").startswith("Comment")
    )
    assert "pull_request_target" in comment["if"]
    (twin,) = (
        s
        for s in load(REUSABLE["plan"])["jobs"]["plan"]["steps"]
        if s.get("name") == comment["name"]
    )
    assert "pull_request_target" in twin["if"]


@needs_jq
def test_the_fork_setup_plans_the_pull_request_files_from_pr(sandbox, repo, tmp_path):
    """The fork example's layout, run for real: a shallow clone of the pull request's
    head in pr/ (beside hostile files), the action's steps run from the workspace
    root with config pr/config and base the base commit, which is fetched into the
    clone; nothing in pr/ runs, and the changed tenants are not contacted."""
    base, head, dotenv = _pull_request(sandbox, repo)
    workspace = tmp_path / "workspace"
    pr = workspace / PR_DIR
    _git(tmp_path, "clone", "--quiet", "--depth=1", f"file://{repo.parent}", str(pr))
    assert _git(pr, "rev-parse", "HEAD") == head
    absent = ["git", "-C", str(pr), "cat-file", "-e", f"{base}^{{commit}}"]
    assert subprocess.run(absent, capture_output=True).returncode  # a shallow clone
    marker = _hostile_workspace(pr)
    for name in ("qlik-email", "git", "gh", "jq", "bash", "python3"):
        for directory in (pr, pr / "config"):
            tool = directory / name
            tool.write_text(f"#!/bin/sh\ntouch {marker}\n")
            tool.chmod(0o755)
    inputs = {
        "command": "plan",
        "config": f"{PR_DIR}/config",
        "base": base,
        "allowed-hosts": "127.0.0.1",
        "env": dotenv,
        "shard": "",
        "comment": "true",
    }
    ctx = context(inputs)
    ctx["github"]["event_name"] = "pull_request_target"
    ctx["github"]["event"]["pull_request"]["base"] = {"sha": base}
    ctx["github"]["event"]["pull_request"]["head"] = {"sha": head}
    runner = Runner("action", tmp_path, workspace, ctx)

    found = runner.run(None, "Find the trusted base")
    assert found.returncode == 0, found.stdout + found.stderr
    assert runner.context["steps"]["base"]["outputs"] == {"ref": base}
    assert _git(pr, "cat-file", "-t", base) == "commit"  # fetched into the shallow clone
    validated = runner.run(None, "Validate")
    assert validated.returncode == 0, validated.stderr
    planned = runner.run(None, "Plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    tenants = _planned(tmp_path)
    assert tenants[""]["notRead"] == 2
    assert tenants["tenant-001"]["notRead"] and tenants["tenant-002"]["notRead"]
    assert not tenants["tenant-004"]["notRead"] and not tenants["tenant-004"]["error"]
    assert runner.run(None, "Comment on the pull request").returncode == 0
    (comment,) = runner.gh()["comments"]["7"]
    assert "tenant-004" in comment["body"]
    assert not marker.exists(), "nothing in the pull request's files ran"


@needs_jq
def test_plan_workflow_reports_an_invalid_configuration(repo, tmp_path):
    (repo / "tenants" / "tenant-001.yaml").write_text("name: tenant-001\nurl: nope\n")
    inputs = {"config": "config", "shard": "", "comment": True}
    runner = Runner("plan", tmp_path, repo.parent, context(inputs))
    validated = runner.run("plan", "Validate")
    assert validated.returncode == 1
    assert "::error file=config/tenants/tenant-001.yaml,line=2,col=6" in validated.stderr
    assert runner.run("plan", "Comment on the pull request").returncode == 0
    (comment,) = runner.gh()["comments"]["7"]
    assert ":x: **The configuration is not valid**" in comment["body"]
    assert "config/tenants/tenant-001.yaml:2:6:" in comment["body"]
    assert "::error" not in comment["body"]  # annotations are for the runner, not the comment


@needs_jq
def test_drift_workflow_opens_updates_and_closes_one_issue(cli, sandbox, repo, tmp_path):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    inputs = {"config": "config", "shard": "", "verify": True, "label": "drift", "issue": True}
    runner = Runner("drift", tmp_path, repo.parent, context(inputs))

    def nightly() -> list[dict[str, Any]]:
        runner.run("drift", "Drift")
        assert runner.run("drift", "Open, update or close the drift issue").returncode == 0
        return runner.gh().get("issues", [])

    assert nightly() == [] and runner.context["steps"]["drift"]["outputs"]["status"] == "clean"
    sandbox.edit("tenant-001", senderName="Edited")
    (opened,) = nightly()
    assert opened["labels"] == ["drift"] and opened["state"] == "open"
    assert opened["title"] == "qlik-email drift: 1 drifted, 0 unhealthy, 0 unreadable"
    assert "tenant-001" in opened["body"] and "Fingerprint: `sha256:" in opened["body"]
    assert runner.gh()["labels"] == ["drift"]

    (same,) = nightly()  # the same drift: no edit, no comment
    assert same == opened

    sandbox.break_password("tenant-003")
    (changed,) = nightly()
    assert changed["title"].endswith("1 drifted, 1 unhealthy, 0 unreadable")
    assert len(changed["comments"]) == 1 and "The drift changed" in changed["comments"][0]

    result = runner.run("drift", "Result")
    assert result.returncode == 0 and "::warning" in result.stdout
    assert cli("apply", str(repo), "--auto-approve", "--rotate-secrets").code == 0
    (closed,) = nightly()
    assert closed["state"] == "closed" and "healthy again" in closed["comments"][-1]


def _published(sandbox, repo: Path, tmp_path: Path) -> tuple[Path, str]:
    """Make the repository holding `repo` a git repository (API keys from ${env:...})
    pushed to a bare remote; returns the remote and the NAME=value lines of the keys."""
    values = env_repo(sandbox, repo)
    top = repo.parent
    remote = tmp_path / "remote.git"
    _git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    _git(top, "init", "--quiet", "--initial-branch=main")
    _git(top, "add", repo.name)
    _git(top, "commit", "--quiet", "-m", "the fleet")
    _git(top, "remote", "add", "origin", str(remote))
    _git(top, "push", "--quiet", "origin", "main")
    return remote, "# API keys\n" + "".join(f"{k}={v}\r\n" for k, v in values.items())


def _checkout(remote: Path, repo: Path, workspace: Path) -> Path:
    """A job's checkout of the remote's main into `workspace` (the secret files copied
    in, as CI provides them)."""
    _git(remote.parent, "clone", "--quiet", str(remote), str(workspace))
    shutil.copytree(repo / ".secrets", workspace / repo.name / ".secrets")
    return workspace


def _record(remote: Path) -> dict[str, Any]:
    text = _git(remote, "show", "refs/heads/qlik-email-state:config/applied.json")
    return dict(json.loads(text)["tenants"])


APPLY_INPUTS = {
    "config": "config",
    "shard": "",
    "tenant": "",
    "rotate-secrets": False,
    "allow-delete": False,
    "force": False,
    "test-email": "",
    "state": "git",
    "state-ref": "qlik-email-state",
}


@needs_jq
def test_apply_workflow_applies_the_saved_plan_and_keeps_the_record(sandbox, repo, tmp_path):
    """The plan job's plan, saved as the artifact, is what the apply job (another
    checkout) applies; the record goes to the remote, so the next plan is empty."""
    remote, dotenv = _published(sandbox, repo, tmp_path)
    ctx = context(dict(APPLY_INPUTS), {"QLIK_EMAIL_ENV": dotenv})

    def plan_job(number: int) -> Runner:
        workspace = _checkout(remote, repo, tmp_path / f"plan-{number}")
        runner = Runner("apply", tmp_path, workspace, ctx)
        planned = runner.run("plan", "Plan")
        assert planned.returncode == 0, planned.stdout + planned.stderr
        return runner

    planner = plan_job(1)
    assert ctx["steps"]["plan"]["outputs"] == {"has-changes": "true"}
    assert "**Plan: 4 to create" in planner.summary.read_text()
    # upload-artifact, then download-artifact in the apply job
    saved = tmp_path / "runner" / "qlik-email-plan" / "plan.json"
    saved.parent.mkdir()
    shutil.copy(tmp_path / "runner" / "qlik-email-out" / "plan.json", saved)

    applier = Runner("apply", tmp_path, _checkout(remote, repo, tmp_path / "apply-1"), ctx)
    applied = applier.run("apply", "Apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "**Apply: 4 applied" in applier.summary.read_text()
    assert all(sandbox.live_config(t.name) for t in sandbox.tenants)
    assert json.loads((tmp_path / "runner" / "qlik-email-out" / "apply.json").read_text())
    assert sorted(_record(remote)) == [t.name for t in sandbox.tenants]
    keys = [line.split("=", 1)[1].strip() for line in dotenv.splitlines() if "=" in line]
    for key in keys:  # no API key in the job's output but its masks
        assert key not in applied.stdout
        assert f"::add-mask::{key}" in applied.stderr.splitlines()

    plan_job(2)  # the next run: nothing to apply, the apply job does not run
    assert ctx["steps"]["plan"]["outputs"] == {"has-changes": "false"}

    # rotate-secrets and tenant inputs: planned, saved, and only that is applied.
    ctx["inputs"] |= {"rotate-secrets": True, "tenant": "tenant-001\n tenant-00[3]"}
    sandbox.reset_stats()
    plan_job(3)
    assert ctx["steps"]["plan"]["outputs"] == {"has-changes": "true"}
    shutil.copy(tmp_path / "runner" / "qlik-email-out" / "plan.json", saved)
    planned = json.loads(saved.read_text())
    assert [t["name"] for t in planned["tenants"]] == ["tenant-001", "tenant-003"]
    applier = Runner("apply", tmp_path, _checkout(remote, repo, tmp_path / "apply-2"), ctx)
    assert applier.run("apply", "Apply").returncode == 0
    assert {e.tenant for e in sandbox.request_log if e.method == "PUT"} == {
        "tenant-001",
        "tenant-003",
    }


@needs_jq
def test_apply_workflow_skips_stale_commits_and_refuses_a_bad_env(sandbox, repo, tmp_path):
    values = env_repo(sandbox, repo)
    inputs = dict(APPLY_INPUTS, state="")
    runner = Runner("apply", tmp_path, repo.parent, context(inputs, {"QLIK_EMAIL_ENV": ""}))
    runner.state.write_text(json.dumps({**_gh_state(), "heads": {"main": "c" * 40}}))
    stale = runner.run("newest", "Check that this is the newest commit of the branch")
    assert stale.returncode == 0 and "::notice" in stale.stdout
    assert runner.context["steps"]["check"]["outputs"] == {"stale": "true"}

    secret = next(iter(values.values()))
    for dotenv, line in [
        ("A=1\n" + secret + "\n", 2),  # a value pasted without its name
        (f"# comment\n\nBASE={secret}\n", 3),  # would turn --base off
        (f"HTTPS_PROXY=http://{secret}@127.0.0.1:9\n", 1),
        (f"GIT_CONFIG_COUNT=1\nX={secret}\n", 1),
    ]:
        runner.context["secrets"]["QLIK_EMAIL_ENV"] = dotenv
        refused = runner.run("apply", "Apply")
        assert refused.returncode == 1
        assert f"::error title=qlik-email::QLIK_EMAIL_ENV line {line}: " in refused.stderr
        assert secret not in refused.stdout + refused.stderr
    assert sandbox.request_log == []


def _gh_state() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_gh import empty_state

    return empty_state()


def test_the_workflow_finds_the_commit_it_was_called_at(tmp_path):
    runner = Runner("plan", tmp_path, tmp_path, context({}))
    step = "Find the qlik-email commit this workflow was called at"
    found = runner.run("plan", step)
    assert found.returncode == 0, found.stdout + found.stderr
    assert runner.context["steps"]["tool"]["outputs"] == {
        "repository": "qlik-email/qlik-email",
        "sha": "d" * 40,
    }
    for job in ({}, {"workflow_repository": "a/b", "workflow_sha": "main"}):
        runner.context["job"] = job  # GitHub Enterprise Server has no job.workflow_*
        refused = runner.run("plan", step)
        assert refused.returncode == 1 and "::error title=qlik-email::" in refused.stdout
        assert runner.context["steps"]["tool"]["outputs"] == {}


def _hostile_workspace(workspace: Path) -> Path:
    """A checkout whose `pip` and `venv` modules would leave a mark if imported."""
    marker = workspace / "imported"
    for module in ("pip", "venv"):
        (workspace / module).mkdir(parents=True)
        (workspace / module / "__init__.py").write_text(f"open({str(marker)!r}, 'w')\n")
    return marker


def _git_status() -> str:
    done = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout


@pytest.mark.parametrize("kind", ["workflow", "action"])
def test_the_install_script_installs_the_repository_checkout(kind, tmp_path):
    """The reusable workflow's and the action's install steps run scripts/install-tool.sh
    of this checkout, which installs it into a fresh virtual environment (only the
    dependencies come from the package index) and leaves the checkout as it was."""
    workspace = tmp_path / "workspace"
    marker = _hostile_workspace(workspace)
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    before = _git_status()
    runner = Runner(
        "plan" if kind == "workflow" else "action", tmp_path, workspace, context({"package": ""})
    )
    if kind == "workflow":  # the workflow's checkout of qlik-email at the called commit
        (workspace / TOOL_DIR).symlink_to(ROOT)
        done = runner.run("plan", "Install qlik-email")
        assert not (workspace / TOOL_DIR).exists()  # the workspace is the configuration's
    else:
        done = runner.run(None, "Install qlik-email", {"GITHUB_ACTION_PATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"qlik-email {version.group(1)} (Python " in done.stdout
    venv_bin = tmp_path / "runner" / "qlik-email" / "bin"
    assert (tmp_path / "path.txt").read_text() == f"{venv_bin}\n"
    installed = subprocess.run(
        [str(venv_bin / "qlik-email"), "--version"], capture_output=True, text=True, cwd=tmp_path
    )
    assert installed.stdout.startswith(f"qlik-email {version.group(1)} (Python ")
    site = subprocess.run(
        [str(venv_bin / "python"), "-c", "import reconciler; print(reconciler.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert site.stdout.startswith(str(tmp_path / "runner" / "qlik-email")), "not an editable link"
    assert not marker.exists(), "nothing of the workspace was imported"
    assert _git_status() == before, "the checkout was not written to"


@pytest.mark.parametrize(
    "args",
    [
        ["--package", "./qlik-email"],
        ["--package", "."],
        ["--package", "/tmp/qlik-email"],
        ["--package", "--index-url=https://example.com/simple"],
        ["--package", "https://example.com/qlik_email-0.1.0-py3-none-any.whl"],
        ["--package", "qlik-email @ git+https://example.com/qlik-email"],
        ["--package", "qlik-email==0.1.0", "--source", str(ROOT)],
        ["--source", str(ROOT / "examples")],
        [],
    ],
)
def test_the_install_script_installs_only_a_checkout_or_a_release(args, tmp_path):
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), "--venv", str(venv), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert not venv.exists()


RELEASE = ROOT / ".github" / "workflows" / "release.yml"


def test_the_release_workflow_holds_each_permission_in_one_job():
    release = load(RELEASE)
    assert release["on"] == {"push": {"tags": ["v*"]}}
    jobs = release["jobs"]
    oidc = {name for name, job in jobs.items() if job["permissions"].get("id-token") == "write"}
    assert oidc == {"attest", "publish"}
    writers = {name for name, job in jobs.items() if job["permissions"].get("contents") == "write"}
    assert writers == {"release"}
    assert jobs["publish"]["environment"]["name"] == "pypi"
    assert jobs["attest"]["permissions"] == {"id-token": "write", "attestations": "write"}
    for name in ("attest", "publish", "release"):  # they run no code of the repository
        steps = jobs[name]["steps"]
        assert all("checkout@" not in step.get("uses", "") for step in steps), name
    uses = [step.get("uses", "").split("@")[0] for job in jobs.values() for step in job["steps"]]
    assert "actions/attest-build-provenance" in uses and "pypa/gh-action-pypi-publish" in uses
    assert "gh release create" in jobs["release"]["steps"][-1]["run"]


def test_the_release_workflow_builds_and_smoke_tests_the_wheel(tmp_path):
    """The build job's scripts, run on a copy of this checkout: the tag must name the
    version; the sdist and the wheel build; the wheel, installed alone, runs."""
    workspace = tmp_path / "workspace"
    shutil.copytree(
        ROOT,
        workspace,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".ci", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    ctx = context({})
    ctx["github"]["ref_name"] = f"v{version.group(1)}"
    runner = Runner(RELEASE, tmp_path, workspace, ctx)
    assert runner.run("build", "Check that the tag names the version").returncode == 0
    ctx["github"]["ref_name"] = "v99.0.0"
    wrong = runner.run("build", "Check that the tag names the version")
    assert wrong.returncode == 1 and "::error title=release::" in wrong.stdout

    built = runner.run("build", "Build the sdist and the wheel")
    assert built.returncode == 0, built.stdout + built.stderr
    names = sorted(path.name for path in (workspace / "dist").iterdir())
    assert names == [
        f"qlik_email-{version.group(1)}-py3-none-any.whl",
        f"qlik_email-{version.group(1)}.tar.gz",
    ]
    smoke = runner.run("build", "Smoke-test the wheel in a clean environment")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert f"qlik-email {version.group(1)} (Python " in smoke.stdout


def test_pre_commit_hook_validates_the_repository():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "qlik-email-validate")
    assert hook["entry"] == "qlik-email validate"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    assert files.search("tenants/acme.yaml") and files.search("qlik-email.yml")
    assert not files.search("README.md")


@pytest.mark.parametrize("kind", ["plan", "drift", "action"])
def test_the_base_is_always_a_revision_passed_as_its_sha(kind, tmp_path):
    """A directory of the checkout named like the base never stands in for it: the
    base is resolved in the object database, and --base gets the commit's SHA."""
    top = tmp_path / "workspace"
    (top / "config").mkdir(parents=True)
    (top / "config" / "qlik-email.yaml").write_text("settings: {}\n")
    _git(top, "init", "--quiet", "--initial-branch=main")
    _git(top, "add", "-A")
    _git(top, "commit", "--quiet", "-m", "base")
    sha = _git(top, "rev-parse", "HEAD")
    ctx = context({"config": "config"})
    runner = Runner("action" if kind == "action" else kind, tmp_path, top, ctx)
    job = None if kind == "action" else kind
    for given in ("main", sha[:12], sha):
        ctx["inputs"]["base"] = given
        found = runner.run(job, "Find the trusted base")
        assert found.returncode == 0, found.stdout + found.stderr
        assert ctx["steps"]["base"]["outputs"] == {"ref": sha}
    missing = "e" * 40
    for decoy in (top / missing, top / "config" / missing):  # a pull request's directories
        (decoy / "tenants").mkdir(parents=True)
        (decoy / "qlik-email.yaml").write_text('settings: {allowedHosts: ["*"]}\n')
    for given in (missing, "--upload-pack=touch x"):
        ctx["inputs"]["base"] = given
        refused = runner.run(job, "Find the trusted base")
        assert refused.returncode == 1 and "::error title=qlik-email::" in refused.stdout
        assert ctx["steps"]["base"]["outputs"] == {}
    assert not (top / "x").exists()
