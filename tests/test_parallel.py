"""Large fleets are read by forked worker processes: the result must be the
same as one process's, every tenant exactly once, errors included."""

from __future__ import annotations

import json

import yaml
from conftest import run_cli_process

from reconciler.parallel import worker_count
from reconciler.sandbox import Sandbox


def plan_json(repo, workers: int) -> tuple[int, dict, str]:
    done = run_cli_process("plan", str(repo), "--format", "json", "--progress", workers=workers)
    return done.code, json.loads(done.stdout), done.stderr


def comparable(document: dict) -> list:
    return [{k: v for k, v in t.items()} for t in document["tenants"]]


def test_forked_workers_read_the_same_as_one_process(tmp_path):
    with Sandbox(tenants=60, seed=4) as sandbox:
        repo = sandbox.write_config(tmp_path / "config")
        for name in ("tenant-007", "tenant-031"):
            path = repo / "tenants" / f"{name}.yaml"
            data = yaml.safe_load(path.read_text())
            data["auth"] = {"apiKey": "${env:NOT_SET_FOR_THIS_TEST}"}  # fails before any request
            path.write_text(yaml.safe_dump(data))
        sandbox.seed_legacy(
            "tenant-010",
            {
                "serverAddress": "127.0.0.1",
                "serverPort": 25,
                "securityType": "none",
                "username": "u",
                "emailAddress": "a@b.example",
            },
        )
        sandbox.reset_stats()
        code_one, one, _ = plan_json(repo, 1)
        requests_one = sandbox.stats.requests
        sandbox.reset_stats()
        code_three, three, progress = plan_json(repo, 3)
        assert (code_one, code_three) == (1, 1)  # two tenants cannot be read
        assert comparable(one) == comparable(three)
        assert (
            one["summary"]
            == three["summary"]
            == {
                "create": 57,
                "update": 1,
                "replace": 0,
                "delete": 0,
                "unchanged": 0,
                "errors": 2,
            }
        )
        assert sandbox.stats.requests == requests_one == 58  # every readable tenant once
        assert "Reading tenants: 60/60 (2 failed)" in progress


def test_no_fork_with_threads_or_small_fleets(monkeypatch):
    monkeypatch.delenv("QLIK_EMAIL_WORKERS", raising=False)
    assert worker_count(10) == 1
    with Sandbox(tenants=1):  # the sandbox runs threads in this process
        assert worker_count(100_000) == 1


def test_command_references_run_in_one_process_before_the_readers_fork(tmp_path):
    # A command shared by many tenants then runs once (the resolver caches it),
    # not once per reading process.
    runs = tmp_path / "runs.log"
    script = tmp_path / "api-key.sh"
    script.write_text('echo "$PPID" >> "$1"\ncat "$2"\n')  # which process ran it
    with Sandbox(tenants=40, seed=5) as sandbox:
        repo = sandbox.write_config(tmp_path / "config")
        for tenant in sandbox.tenants:
            path = repo / "tenants" / f"{tenant.name}.yaml"
            data = yaml.safe_load(path.read_text())
            key_file = repo / ".secrets" / f"{tenant.name}.apikey"
            data["auth"] = {"apiKey": f"${{cmd:/bin/sh {script} {runs} {key_file}}}"}
            path.write_text(yaml.safe_dump(data))
        done = run_cli_process("apply", str(repo), "--auto-approve", workers=3)
        assert done.code == 0, done
        assert all(sandbox.live_config(t.name) is not None for t in sandbox.tenants)
    runners = runs.read_text().splitlines()
    assert len(runners) == 40 and len(set(runners)) == 1
