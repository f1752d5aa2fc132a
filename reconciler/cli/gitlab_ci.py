"""The command line of the GitLab CI template's GitLab calls (`reconciler.gitlab_ci`):
the sticky merge-request note with the plan, and the drift issue.

    python -I -m reconciler.cli.gitlab_ci note --body plan.md
    python -I -m reconciler.cli.gitlab_ci drift-issue --status drift \
        --report drift.json --body drift.md

It prints what it did (or why it did nothing); exit 1, with the reason on
stderr, when GitLab refuses.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from reconciler.gitlab_ci import (
    TIMEOUT_S,
    Api,
    GitLabError,
    Project,
    drift_issue,
    drift_of,
    marker,
    sticky_note,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reconciler.cli.gitlab_ci")
    parser.add_argument("--config", default=os.environ.get("QLIK_EMAIL_CONFIG", "."))
    parser.add_argument("--shard", default=os.environ.get("QLIK_EMAIL_SHARD", ""))
    commands = parser.add_subparsers(dest="command", required=True)
    note = commands.add_parser("note", help="the sticky merge-request note with the plan")
    note.add_argument("--body", type=Path, required=True)
    issue = commands.add_parser("drift-issue", help="open, update or close the drift issue")
    issue.add_argument("--status", choices=["clean", "drift", "error"], required=True)
    issue.add_argument("--report", type=Path)
    issue.add_argument("--body", type=Path)
    issue.add_argument("--label", default="drift")
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    """Run one command; exit 1 (with the reason on stderr) when GitLab refuses."""
    args = _parser().parse_args(argv)
    run_url = env.get("CI_PIPELINE_URL", "")
    try:
        project = Project.from_env(env)
        with httpx.Client(timeout=TIMEOUT_S) as client:
            api = Api(project, client)
            if args.command == "note":
                mr = env.get("CI_MERGE_REQUEST_IID", "")
                if not mr.isdigit():
                    print("Not a merge request pipeline: no note posted.")
                    return 0
                if not args.body.is_file():
                    print("No plan to post (see the errors above).")
                    return 0
                head = marker("plan", args.config, args.shard)
                body = args.body.read_text(encoding="utf-8")
                body += f"\n---\n<sub>The plan of [this pipeline]({run_url}).</sub>\n"
                print(sticky_note(api, mr, head, body))
            else:
                drift = drift_of(args.status, args.report, args.body, args.shard)
                head = marker("drift", args.config, args.shard)
                print(drift_issue(api, args.label, head, drift, run_url))
    except (GitLabError, OSError, ValueError, KeyError) as exc:
        print(f"qlik-email: GitLab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
