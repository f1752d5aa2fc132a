"""The engine as a Python API, without the CLI: plan, apply and drift against a
sandbox fleet, one session per command, every tenant read exactly once."""

from __future__ import annotations

from datetime import date

import pytest
import yaml
from conftest import run_cli_process

from reconciler.engine import ApplyHooks, ApplyOptions, Engine, Outcome
from reconciler.errors import UnsafePlanError
from reconciler.model import Action, LiveState, Plan, ReadFailure
from reconciler.sandbox import Sandbox

pytestmark = pytest.mark.slow


def test_plan_then_apply_then_plan_again_through_the_python_api(tmp_path, monkeypatch):
    with Sandbox(tenants=5, seed=21) as sandbox:
        repo = sandbox.write_config(tmp_path / "config", microsoft365=("tenant-002",))
        monkeypatch.chdir(tmp_path)  # the engine needs no particular working directory

        plan = Engine.load(repo).plan()
        assert [t.action for t in plan.tenants] == [Action.CREATE] * 5
        assert plan.config_root == str(repo.resolve()) and plan.shard is None

        shown: list[Plan] = []

        class Record(ApplyHooks):
            def planned(self, plan: Plan) -> None:
                shown.append(plan)

        run = Engine.load(repo, allow_commands=True).apply(ApplyOptions(), hooks=Record())
        assert run.report is not None and run.report.ok, run.report
        assert {r.outcome for r in run.report.results} == {Outcome.APPLIED}
        assert len(shown) == 1 and shown[0].count(Action.CREATE) == 5
        assert all(sandbox.live_config(t.name) is not None for t in sandbox.tenants)

        again = Engine.load(repo).plan()
        assert not again.has_changes and not again.errors
        drift = Engine.load(repo, tenants=["tenant-00[12]"]).drift(
            verify=True, today=date(2026, 1, 1)
        )
        assert [t.tenant for t in drift.tenants] == ["tenant-001", "tenant-002"]
        assert drift.clean


def test_the_engine_refuses_an_unsafe_plan_before_writing_anything(tmp_path, monkeypatch):
    with Sandbox(tenants=3, seed=22) as sandbox:
        repo = sandbox.write_config(tmp_path / "config")
        root = repo / "qlik-email.yaml"
        root.write_text(root.read_text() + "  safety: {maxChanges: 1}\n")  # under settings:
        sandbox.reset_stats()
        with pytest.raises(UnsafePlanError, match="maxChanges 1"):
            Engine.load(repo, allow_commands=True).apply()
        assert {e.method for e in sandbox.request_log} == {"GET"}
        forced = Engine.load(repo, allow_commands=True).apply(ApplyOptions(force=True))
        assert forced.report is not None and forced.report.ok


def test_a_cancelled_apply_writes_nothing(tmp_path, monkeypatch):
    with Sandbox(tenants=2, seed=23) as sandbox:
        repo = sandbox.write_config(tmp_path / "config")

        class Refuse(ApplyHooks):
            def confirm(self, plan: Plan) -> bool:
                return False

        sandbox.reset_stats()
        run = Engine.load(repo, allow_commands=True).apply(hooks=Refuse())
        assert run.report is None and run.plan.count(Action.CREATE) == 2
        assert {e.method for e in sandbox.request_log} == {"GET"}


def test_unreadable_tenants_are_typed_failures_and_the_rest_is_read_once(tmp_path, monkeypatch):
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
        live = Engine.load(repo).read()
        failed = {name for name, read in live.items() if isinstance(read, ReadFailure)}
        assert failed == {"tenant-007", "tenant-031"}
        assert "NOT_SET_FOR_THIS_TEST" in str(live["tenant-007"])
        assert all(isinstance(live[n], LiveState) for n in live if n not in failed)
        assert sandbox.stats.requests == 58  # every readable tenant once
        plan = Engine.load(repo).plan()
        assert (plan.count(Action.CREATE), plan.count(Action.UPDATE), len(plan.errors)) == (
            57,
            1,
            2,
        )


def test_each_command_reference_runs_once_for_a_whole_apply(tmp_path):
    # apply reads, writes, verifies and reads back with one session: each
    # tenant's credential command runs once, not once per step.
    runs = tmp_path / "runs.log"
    script = tmp_path / "api-key.sh"
    script.write_text('echo "$2" >> "$1"\ncat "$2"\n')  # which key was asked for
    with Sandbox(tenants=40, seed=5) as sandbox:
        repo = sandbox.write_config(tmp_path / "config")
        key_files = []
        for tenant in sandbox.tenants:
            path = repo / "tenants" / f"{tenant.name}.yaml"
            data = yaml.safe_load(path.read_text())
            key_files.append(str(repo / ".secrets" / f"{tenant.name}.apikey"))
            data["auth"] = {"apiKey": f"${{cmd:/bin/sh {script} {runs} {key_files[-1]}}}"}
            path.write_text(yaml.safe_dump(data))
        done = run_cli_process("apply", str(repo), "--auto-approve")
        assert done.code == 0, done
        assert all(sandbox.live_config(t.name) is not None for t in sandbox.tenants)
    assert sorted(runs.read_text().splitlines()) == sorted(key_files)
