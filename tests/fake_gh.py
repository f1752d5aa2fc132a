"""A stand-in for the `gh` CLI, for running the workflows' scripts in tests.

It knows the few calls the reusable workflows make (comments on a pull request,
the token's own login, issues with a label, a branch's newest commit), keeps its
state in the JSON file named by FAKE_GH_STATE, logs every call there, and runs
`--jq` through the real `jq`, as gh does with its built-in one. The token's
account is `viewer` in the state: a bot's comments carry its REST login, the
GraphQL login with "[bot]" appended, as GitHub's do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BOT = {"login": "github-actions", "type": "Bot"}  # GraphQL's login; REST's ends in [bot]


def empty_state() -> dict[str, Any]:
    return {
        "comments": {},
        "issues": [],
        "labels": [],
        "heads": {},
        "calls": [],
        "next_id": 100,
        "viewer": BOT,
    }


def rest_user(viewer: dict[str, str] | None) -> dict[str, str]:
    """The `user` of a REST object written by `viewer` (None: an app GitHub does not
    name to GraphQL)."""
    if viewer is None:
        return {"login": "unnamed-app[bot]", "type": "Bot"}
    suffix = "[bot]" if viewer["type"] == "Bot" else ""
    return {"login": viewer["login"] + suffix, "type": viewer["type"]}


def option(args: list[str], name: str, default: str | None = None) -> str | None:
    return args[args.index(name) + 1] if name in args else default


def emit(value: Any, args: list[str]) -> None:
    text = json.dumps(value)
    expression = option(args, "--jq")
    if expression is None:
        print(text)
        return
    done = subprocess.run(
        ["jq", "-r", expression], input=text, capture_output=True, text=True, check=True
    )
    sys.stdout.write(done.stdout)


def api(state: dict[str, Any], args: list[str]) -> int:
    if args[1] == "graphql":
        query = next(a for a in args if a.startswith("query="))
        if "viewer" not in query:
            print(f"fake gh: unknown query {query}", file=sys.stderr)
            return 1
        if state["viewer"] is None:  # a token GitHub does not say the account of
            print("HTTP 403: Resource not accessible by integration", file=sys.stderr)
            return 1
        emit({"data": {"viewer": {"login": state["viewer"]["login"]}}}, args)
        return 0
    method = option(args, "--method", "GET")
    path = next(a for a in args[1:] if a.startswith("repos/"))
    parts = path.split("/")
    body = json.loads(Path(option(args, "--input") or "/dev/null").read_text() or "{}")
    if parts[3:5] == ["commits", "heads"]:
        emit({"sha": state["heads"]["/".join(parts[5:])]}, args)
    elif parts[3] == "issues" and parts[4] == "comments" and method == "PATCH":
        comment = next(
            c for cs in state["comments"].values() for c in cs if c["id"] == int(parts[5])
        )
        comment["body"] = body["body"]
        emit(comment, args)
    elif parts[3] == "issues" and parts[5] == "comments" and method == "POST":
        state["next_id"] += 1
        comment = {"id": state["next_id"], "body": body["body"], "user": rest_user(state["viewer"])}
        state["comments"].setdefault(parts[4], []).append(comment)
        emit(comment, args)
    elif parts[3] == "issues" and parts[5] == "comments":
        emit(state["comments"].get(parts[4], []), args)
    else:
        print(f"fake gh: unknown api call {method} {path}", file=sys.stderr)
        return 1
    return 0


def issue(state: dict[str, Any], args: list[str]) -> int:
    action = args[1]
    issues = state["issues"]
    if action == "list":
        label, wanted = option(args, "--label"), option(args, "--state", "open")
        found = [i for i in issues if label in i["labels"] and i["state"] == wanted]
        emit([{"number": i["number"], "body": i["body"]} for i in found], args)
        return 0
    if action == "create":
        if option(args, "--label") not in state["labels"]:
            print("could not add label: not found", file=sys.stderr)
            return 1
        state["next_id"] += 1
        issues.append(
            {
                "number": state["next_id"],
                "title": option(args, "--title"),
                "body": Path(option(args, "--body-file") or "").read_text(),
                "labels": [option(args, "--label")],
                "state": "open",
                "comments": [],
            }
        )
        print(f"https://github.com/owner/repo/issues/{state['next_id']}")
        return 0
    number = int(args[2])
    target = next(i for i in issues if i["number"] == number)
    if action == "view":
        emit({"body": target["body"]}, args)
    elif action == "edit":
        target["title"] = option(args, "--title", target["title"])
        target["body"] = Path(option(args, "--body-file") or "").read_text()
    elif action == "comment":
        target["comments"].append(option(args, "--body"))
    elif action == "close":
        target["state"] = "closed"
    else:
        return 1
    return 0


def main(args: list[str]) -> int:
    path = Path(os.environ["FAKE_GH_STATE"])
    state = json.loads(path.read_text()) if path.exists() else empty_state()
    state["calls"].append(args)
    if args[0] == "api":
        code = api(state, args)
    elif args[0] == "issue":
        code = issue(state, args)
    elif args[:2] == ["label", "create"]:
        if args[2] in state["labels"]:
            print(f"label {args[2]} already exists", file=sys.stderr)
            code = 1
        else:
            state["labels"].append(args[2])
            code = 0
    else:
        print(f"fake gh: unknown command {args}", file=sys.stderr)
        code = 1
    path.write_text(json.dumps(state, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
