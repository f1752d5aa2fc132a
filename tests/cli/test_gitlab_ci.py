"""The GitLab CI template, run for real: gitlab-ci-local runs the example
pipeline's jobs with its shell executor against the sandbox, a bare repository
stands in for the GitLab project's repository, and a GitLab API stand-in on
loopback takes the note and issue calls (as the GitHub workflow tests use a
stand-in `gh`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitrepo import git

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "gitlab" / "qlik-email.gitlab-ci.yml"
EXAMPLE = ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"
GITLAB_CI_LOCAL = ROOT / ".ci" / "gitlab" / "node_modules" / ".bin" / "gitlab-ci-local"
TOKEN = "glpat-test-token-0123456789"
ME = {"id": 42, "username": "project_1_bot_qlik_email"}


def _tools() -> None:
    missing = [
        name
        for name, present in (
            ("gitlab-ci-local", GITLAB_CI_LOCAL.exists()),
            ("rsync", shutil.which("rsync") is not None),
        )
        if not present
    ]
    if not missing:
        return
    message = f"{', '.join(missing)} missing: run scripts/install-ci-tools (.ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class FakeGitLab:
    """The GitLab API calls of the template: the token's user, merge request notes,
    issues and their notes. Every request must carry the token."""

    def __init__(self) -> None:
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.issues: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.next_id = 100
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                fake.calls.append(f"{self.command} {self.path}")
                if self.headers.get("PRIVATE-TOKEN") != TOKEN:
                    self._send(401, {"message": "401 Unauthorized"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, answer = fake.answer(self.command, self.path.split("?")[0], body)
                self._send(status, answer)

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v4"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = path.removeprefix("/api/v4/").split("/")
        if parts == ["user"]:
            return 200, ME
        if parts[2:3] == ["merge_requests"] and parts[4] == "notes":
            notes = self.notes.setdefault(parts[3], [])
            if method == "GET":
                return 200, notes
            if method == "POST":
                self.next_id += 1
                notes.append({"id": self.next_id, "body": body["body"], "author": ME})
                return 201, notes[-1]
            note = next(n for n in notes if n["id"] == int(parts[5]))
            note["body"] = body["body"]
            return 200, note
        if parts[2:3] == ["issues"]:
            if len(parts) == 3 and method == "GET":
                return 200, [i for i in self.issues if i["state"] == "opened"]
            if len(parts) == 3:
                self.next_id += 1
                issue = {
                    "iid": self.next_id,
                    "title": body["title"],
                    "description": body["description"],
                    "labels": [body["labels"]],
                    "state": "opened",
                    "author": ME,
                    "notes": [],
                }
                self.issues.append(issue)
                return 201, issue
            issue = next(i for i in self.issues if i["iid"] == int(parts[3]))
            if parts[4:] == ["notes"]:
                issue["notes"].append(body["body"])
            elif body.get("state_event") == "close":
                issue["state"] = "closed"
            else:
                issue.update(title=body["title"], description=body["description"])
            return 200, issue
        return 404, {"message": "404 Not Found"}

    def __enter__(self) -> FakeGitLab:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Pipeline:
    """The configuration project: its repository (a bare remote), the example
    pipeline with the template included locally, and gitlab-ci-local to run jobs."""

    def __init__(self, sandbox: Any, tmp: Path, api: FakeGitLab) -> None:
        self.remote = tmp / "remote.git"
        git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        self.project = tmp / "project"
        sandbox.write_config(self.project / "config", microsoft365=(sandbox.tenants[1].name,))
        self.variables = {}
        for tenant in sandbox.tenants:  # API keys as (masked) CI/CD variables
            name = tenant.name.upper().replace("-", "_") + "_API_KEY"
            path = self.project / "config" / "tenants" / f"{tenant.name}.yaml"
            path.write_text(re.sub(r'apiKey: ".*"', f'apiKey: "${{env:{name}}}"', path.read_text()))
            self.variables[name] = tenant.api_key
        shutil.copy(TEMPLATE, self.project / TEMPLATE.name)
        example = EXAMPLE.read_text()
        local = re.sub(r'  - remote: "\S+"', f"  - local: {TEMPLATE.name}", example)
        assert local != example
        (self.project / ".gitlab-ci.yml").write_text(local)
        (self.project / ".gitignore").write_text(".gitlab-ci-local/\nqlik-email-out/\n")
        git(tmp, "init", "--quiet", "--initial-branch=main", str(self.project))
        git(self.project, "remote", "add", "origin", str(self.remote))
        self.commit("the fleet")
        self.variables |= {
            "QLIK_EMAIL_CONFIG": "config",
            "QLIK_EMAIL_ALLOWED_HOSTS": "127.0.0.1",
            "QLIK_EMAIL_VENV": str(Path(sys.executable).parent.parent),
            "QLIK_EMAIL_GITLAB_TOKEN": TOKEN,
            "CI_API_V4_URL": api.url,
            "CI_PROJECT_ID": "1",
        }

    def commit(self, message: str) -> str:
        git(self.project, "add", "-A")
        git(self.project, "commit", "--quiet", "-m", message)
        git(self.project, "push", "--quiet", "origin", "HEAD")
        return git(self.project, "rev-parse", "HEAD")

    def run(self, job: str, **variables: str) -> subprocess.CompletedProcess[str]:
        args = [str(GITLAB_CI_LOCAL), "--no-color", job]
        if job == "qlik-email-apply":
            args.append("--needs")
        for name, value in (self.variables | variables).items():
            args += ["--variable", f"{name}={value}"]
        # No remote QLIK_EMAIL_GITLAB_TOKEN push URL: the bare remote takes pushes.
        args += ["--unset-variable", "CI_REPOSITORY_URL"]
        return subprocess.run(args, cwd=self.project, capture_output=True, text=True, timeout=300)

    def record(self) -> dict[str, Any]:
        text = git(self.remote, "show", "refs/heads/qlik-email-state:config/applied.json")
        return dict(json.loads(text)["tenants"])


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    _tools()
    with FakeGitLab() as api:
        yield api


@pytest.fixture
def pipeline(sandbox, tmp_path, gitlab) -> Pipeline:
    return Pipeline(sandbox, tmp_path, gitlab)


class _GitLabLoader(yaml.SafeLoader):
    """YAML with GitLab's `!reference [job, key]` tag."""


_GitLabLoader.add_constructor(
    "!reference", lambda loader, node: ("!reference", loader.construct_sequence(node))
)


def test_the_example_extends_every_job_of_the_template():
    template = yaml.load(TEMPLATE.read_text(), Loader=_GitLabLoader)  # a SafeLoader
    hidden = {
        name for name in template if name.startswith(".qlik-email-") and "script" in template[name]
    }
    example = yaml.safe_load(EXAMPLE.read_text())
    extended = {
        job["extends"] for job in example.values() if isinstance(job, dict) and "extends" in job
    }
    assert extended == hidden - {".qlik-email-setup"}
    assert template[".qlik-email-apply"]["environment"]["name"] == "qlik-email"
    assert template[".qlik-email-apply"]["resource_group"]
    for job in template.values():
        if isinstance(job, dict) and "script" in job:
            assert "QLIK_EMAIL_GITLAB_TOKEN" not in yaml.safe_dump(job.get("artifacts", {}))
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert template["variables"]["QLIK_EMAIL_PACKAGE"] == f"qlik-email=={version.group(1)}"
    # The guide shows the example as it is (but the commit placeholder).
    guide = (ROOT / "docs" / "gitlab-ci.md").read_text()
    shown = yaml.safe_load(re.search(r"```yaml\n(.*?)```", guide, re.S).group(1))
    assert shown.pop("include") and example.pop("include")
    assert shown == example


def test_the_merge_request_plan_keeps_one_note(sandbox, pipeline, gitlab):
    base = git(pipeline.project, "rev-parse", "HEAD")
    git(pipeline.project, "checkout", "--quiet", "-b", "rename")
    path = pipeline.project / "config" / "tenants" / "tenant-004.yaml"
    path.write_text(path.read_text().replace('"Tenant 004"', '"Four"'))
    pipeline.commit("rename")
    mr = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "7",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
    }
    first = pipeline.run("qlik-email-mr-plan", **mr)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Posted the plan note on !7." in first.stdout
    (note,) = gitlab.notes["7"]
    assert note["body"].startswith("<!-- qlik-email-plan config=config shard= -->\n## ")
    assert '"Four"' in note["body"] and "4 to create" in note["body"]
    assert "not recorded as applied yet" in note["body"]  # no record yet: every secret
    for key in pipeline.variables.values():
        if key.startswith("sbx-"):
            assert key not in first.stdout + first.stderr + note["body"]

    gitlab.notes["7"].insert(0, {"id": 1, "body": note["body"], "author": {"id": 7}})
    again = pipeline.run("qlik-email-mr-plan", **mr)
    assert again.returncode == 0 and "Updated the plan note on !7." in again.stdout
    assert [n["id"] for n in gitlab.notes["7"]] == [1, note["id"]]  # someone else's left alone

    invalid = path.read_text().replace('url: "', 'url: "nope', 1)
    path.write_text(invalid)
    pipeline.commit("break it")
    refused = pipeline.run("qlik-email-mr-plan", **mr)
    assert refused.returncode != 0
    assert ":x: **The configuration is not valid**" in gitlab.notes["7"][1]["body"]


def test_the_default_branch_applies_the_saved_plan_and_keeps_the_record(sandbox, pipeline, gitlab):
    applied = pipeline.run("qlik-email-apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "qlik-email-plan" in applied.stdout and "Apply: 4 applied" in applied.stdout
    assert all(sandbox.live_config(t.name) for t in sandbox.tenants)
    assert sorted(pipeline.record()) == [t.name for t in sandbox.tenants]
    plan = json.loads((pipeline.project / "qlik-email-out" / "plan.json").read_text())
    assert plan["configCommit"] == git(pipeline.project, "rev-parse", "HEAD")

    sandbox.reset_stats()
    again = pipeline.run("qlik-email-apply")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing to apply" in again.stdout
    assert [e for e in sandbox.request_log if e.method == "PUT"] == []


def test_the_scheduled_drift_keeps_one_issue(sandbox, pipeline, gitlab, cli, monkeypatch):
    for name, value in pipeline.variables.items():
        if name.endswith("_API_KEY"):
            monkeypatch.setenv(name, value)
    config = str(pipeline.project / "config")
    assert cli("apply", config, "--auto-approve", "--state", "git").code == 0
    schedule = {"CI_PIPELINE_SOURCE": "schedule"}
    clean = pipeline.run("qlik-email-drift", **schedule)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert gitlab.issues == []
    sandbox.edit("tenant-001", senderName="Edited")
    assert pipeline.run("qlik-email-drift", **schedule).returncode == 0
    (opened,) = gitlab.issues
    assert opened["title"] == "qlik-email drift: 1 drifted, 0 unhealthy, 0 unreadable"
    assert opened["labels"] == ["drift"] and "tenant-001" in opened["description"]
    # The fleet page and table, kept as the job's artifacts, linked from the issue.
    assert "/artifacts/file/qlik-email-out/fleet.html)" in opened["description"]
    assert "/artifacts/file/qlik-email-out/fleet.csv)" in opened["description"]
    assert pipeline.run("qlik-email-drift", **schedule).returncode == 0
    assert gitlab.issues == [opened] and opened["notes"] == []  # unchanged drift
    sandbox.break_password("tenant-003")
    assert pipeline.run("qlik-email-drift", **schedule).returncode == 0
    assert opened["title"].endswith("1 drifted, 1 unhealthy, 0 unreadable")
    assert len(opened["notes"]) == 1 and "The drift changed" in opened["notes"][0]
    fixed = cli("apply", config, "--auto-approve", "--rotate-secrets", "--state", "git")
    assert fixed.code == 0, fixed
    assert pipeline.run("qlik-email-drift", **schedule).returncode == 0
    assert opened["state"] == "closed" and "healthy again" in opened["notes"][-1]
