"""reconciler.gitlab_ci, the template's GitLab calls, against a mock transport:
what it finds, what it leaves alone, and that a failure never shows the token."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from reconciler.cli.gitlab_ci import main
from reconciler.gitlab_ci import Api, GitLabError, Project, marker, sticky_note

TOKEN = "glpat-never-print-me"


def api(handler: Any) -> Api:
    project = Project("https://gitlab.example/api/v4", "5", TOKEN)
    return Api(project, httpx.Client(transport=httpx.MockTransport(handler)))


def test_the_marker_cannot_close_its_comment():
    assert marker("plan", "a-->b", "1/2") == "<!-- qlik-email-plan config=a>b shard=1/2 -->"


def test_a_note_is_found_by_marker_and_author_across_pages():
    head = marker("plan", ".", "")
    others = [{"id": i, "body": head, "author": {"id": 1}} for i in range(100)]
    mine = {"id": 500, "body": f"{head}\nold", "author": {"id": 42}}
    written: list[tuple[str, str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["PRIVATE-TOKEN"] == TOKEN
        if request.url.path.endswith("/user"):
            return httpx.Response(200, json={"id": 42})
        if request.method == "GET":
            page = request.url.params["page"]
            return httpx.Response(200, json=others if page == "1" else [mine])
        written.append((request.method, request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={})

    assert sticky_note(api(handler), "7", head, "new") == "Updated the plan note on !7."
    assert written == [
        ("PUT", "/api/v4/projects/5/merge_requests/7/notes/500", {"body": f"{head}\nnew"})
    ]


def test_a_refusal_names_the_call_never_the_token():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"message": f"bad token {TOKEN}"})

    with pytest.raises(GitLabError) as refused:
        sticky_note(api(handler), "7", "<!-- x -->", "body")
    assert str(refused.value) == "GET user: HTTP 403"


def test_without_its_variables_it_posts_nothing(tmp_path, capsys):
    body = tmp_path / "plan.md"
    body.write_text("plan")
    env = {"CI_API_V4_URL": "http://127.0.0.1:9/api/v4", "CI_MERGE_REQUEST_IID": "7"}
    assert main(["note", "--body", str(body)], env) == 1
    assert "CI_PROJECT_ID, QLIK_EMAIL_GITLAB_TOKEN not set" in capsys.readouterr().err
    env |= {"CI_PROJECT_ID": "5", "QLIK_EMAIL_GITLAB_TOKEN": TOKEN}
    assert main(["note", "--body", str(body)], env) == 1  # nothing listens on port 9
    captured = capsys.readouterr()
    assert "GET user: ConnectError" in captured.err and TOKEN not in captured.err + captured.out


@pytest.mark.parametrize("module", ["reconciler.cli.gitlab_ci", "reconciler.gitlab_ci"])
def test_both_module_paths_run_the_command_line(module: str, tmp_path) -> None:
    """The template calls cli/gitlab_ci.py; a template copied before it moved
    calls reconciler.gitlab_ci, which runs the same command line."""
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "CI_API_V4_URL": "http://127.0.0.1:9/api/v4",
        "CI_PROJECT_ID": "1",
        "QLIK_EMAIL_GITLAB_TOKEN": TOKEN,
    }
    done = subprocess.run(
        [sys.executable, "-m", module, "note", "--body", str(tmp_path / "plan.md")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "Not a merge request pipeline: no note posted.\n")
    assert TOKEN not in done.stdout + done.stderr
