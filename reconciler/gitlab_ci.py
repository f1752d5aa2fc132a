"""The GitLab side of the CI template (`gitlab/qlik-email.gitlab-ci.yml`): one
sticky merge-request note with the plan, and one drift issue opened, updated and
closed with the drift report.

Each is found again by the marker its text starts with AND by the account of the
token in use (`GET /user`), so a note or issue someone else wrote with the same
marker is never edited. The jobs run it with the tool's own interpreter, isolated
from the checkout:

    python -I -m reconciler.gitlab_ci note --body plan.md
    python -I -m reconciler.gitlab_ci drift-issue --status drift --report drift.json --body drift.md

It reads GitLab's predefined variables (CI_API_V4_URL, CI_PROJECT_ID,
CI_MERGE_REQUEST_IID, CI_PIPELINE_URL) and the token from QLIK_EMAIL_GITLAB_TOKEN
(a project access token with the `api` scope: the job token cannot write notes
or issues). The token goes in a header, never in a message.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from reconciler.values import valueclass

TOKEN_VARIABLE = "QLIK_EMAIL_GITLAB_TOKEN"
MAX_BODY = 900_000  # GitLab refuses notes and descriptions over 1,000,000 characters
MAX_PAGES = 50
TIMEOUT_S = 30.0


class GitLabError(Exception):
    """A GitLab API call that failed (the message names the call, never the token)."""


@valueclass
class Project:
    """The API of one project, with the token of the job."""

    api: str
    project: str
    token: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Project:
        missing = [n for n in ("CI_API_V4_URL", "CI_PROJECT_ID", TOKEN_VARIABLE) if not env.get(n)]
        if missing:
            raise GitLabError(f"{', '.join(missing)} not set: nothing posted")
        return cls(env["CI_API_V4_URL"].rstrip("/"), env["CI_PROJECT_ID"], env[TOKEN_VARIABLE])


class Api:
    """The few GitLab calls the template makes, over one HTTP client."""

    def __init__(self, project: Project, client: httpx.Client) -> None:
        self.project, self.client = project, client

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.project.api}/{path}"
        headers = {"PRIVATE-TOKEN": self.project.token}
        try:
            response = self.client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise GitLabError(f"{method} {path}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise GitLabError(f"{method} {path}: HTTP {response.status_code}")
        return response.json() if response.content else None

    def pages(self, path: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list."""
        for page in range(1, MAX_PAGES + 1):
            items = self.call("GET", path, params={**params, "per_page": "100", "page": str(page)})
            yield from items
            if len(items) < 100:
                return

    def me(self) -> int:
        """The id of the token's own account (a project access token's bot user)."""
        return int(self.call("GET", "user")["id"])

    @property
    def base(self) -> str:
        return f"projects/{self.project.project}"


def marker(kind: str, config: str, shard: str) -> str:
    """The first line of a note or issue: which configuration (and shard) it is for.
    `--` is dropped, so that the text cannot close the HTML comment."""
    config, shard = config.replace("--", ""), shard.replace("--", "")
    return f"<!-- qlik-email-{kind} config={config} shard={shard} -->"


def sticky_note(api: Api, mr: str, head: str, body: str) -> str:
    """Create or update the one note of this token's account starting with `head`
    on merge request `mr`; says which."""
    path = f"{api.base}/merge_requests/{mr}/notes"
    me = api.me()
    text = f"{head}\n{body[:MAX_BODY]}"
    for note in api.pages(path, {"sort": "asc", "order_by": "created_at"}):
        if note.get("author", {}).get("id") == me and str(note.get("body", "")).startswith(head):
            api.call("PUT", f"{path}/{note['id']}", json={"body": text})
            return f"Updated the plan note on !{mr}."
    api.call("POST", path, json={"body": text})
    return f"Posted the plan note on !{mr}."


@valueclass
class Drift:
    """What the drift job found: its status, and for drift its report."""

    status: str  # clean, drift or error
    title: str = ""
    fingerprint: str = ""
    body: str = ""


def drift_issue(api: Api, label: str, head: str, drift: Drift, run_url: str) -> str:
    """Keep the one open issue of this token's account starting with `head` in
    step with `drift`: opened when drift appears, updated (with a note) when what
    drifts changes, closed when clean; says what it did."""
    me = api.me()
    path = f"{api.base}/issues"
    found = next(
        (
            issue
            for issue in api.pages(path, {"labels": label, "state": "opened"})
            if issue.get("author", {}).get("id") == me
            and str(issue.get("description") or "").startswith(head)
        ),
        None,
    )
    if drift.status == "clean":
        if found is None:
            return "No drift, no open drift issue."
        notes = f"{path}/{found['iid']}/notes"
        healthy = (
            "Every tenant matches the configuration and is healthy again "
            f"([pipeline]({run_url})). Closing."
        )
        api.call("POST", notes, json={"body": healthy})
        api.call("PUT", f"{path}/{found['iid']}", json={"state_event": "close"})
        return f"Closed drift issue #{found['iid']}."
    if drift.status != "drift":
        return "No drift report: the issue is left as it is."
    footer = (
        f"\n---\n<sub>Updated by [this pipeline]({run_url}). "
        "Closed automatically once drift is clean.</sub>\n"
    )
    description = f"{head}\n{drift.body[:MAX_BODY]}{footer}"
    if found is None:
        fields = {"title": drift.title, "description": description, "labels": label}
        created = api.call("POST", path, json=fields)
        return f"Opened drift issue #{created['iid']}."
    if drift.fingerprint and drift.fingerprint in str(found.get("description") or ""):
        iid = found["iid"]
        return f"Drift unchanged (fingerprint {drift.fingerprint}): issue #{iid} left as it is."
    api.call(
        "PUT", f"{path}/{found['iid']}", json={"title": drift.title, "description": description}
    )
    changed = (
        f"The drift changed (fingerprint `{drift.fingerprint}`): the description shows "
        f"the new report ([pipeline]({run_url}))."
    )
    api.call("POST", f"{path}/{found['iid']}/notes", json={"body": changed})
    return f"Updated drift issue #{found['iid']}."


def drift_of(status: str, report: Path | None, body: Path | None, shard: str) -> Drift:
    """The Drift of the drift job's files (none but the status when clean or failed)."""
    if status != "drift" or report is None or not report.is_file():
        return Drift(status if status == "clean" else "error")
    document = json.loads(report.read_text(encoding="utf-8"))
    summary = document["summary"]
    title = (
        f"qlik-email drift: {summary['drifted']} drifted, {summary['unhealthy']} unhealthy, "
        f"{summary['errors']} unreadable"
    )
    if shard:
        title += f" (shard {shard})"
    text = body.read_text(encoding="utf-8") if body is not None and body.is_file() else ""
    return Drift("drift", title, str(document.get("fingerprint", "")), text)


if __name__ == "__main__":  # the entry point of templates before cli/gitlab_ci.py
    from reconciler.cli.gitlab_ci import main

    sys.exit(main())
