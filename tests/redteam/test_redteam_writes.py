"""A tenant server that carries out a write and then answers it with a success
too large to read: apply reads the tenant back instead of guessing, and reports
what the read-back shows (the real CLI, against the sandbox's `huge-writes`)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import run_cli

from reconciler.sandbox import Sandbox


def _results(report: Path) -> dict[str, dict[str, object]]:
    return {t["name"]: t for t in json.loads(report.read_text())["tenants"]}


def test_a_write_answered_with_an_unreadable_success_is_read_back(tmp_path: Path) -> None:
    names = ["unreadable", "clean"]
    with Sandbox(names=names, seed=41, hostile={"unreadable": ("huge-writes",)}) as sandbox:
        repo = sandbox.write_config(tmp_path / "config")
        report = tmp_path / "apply.json"
        done = run_cli("apply", str(repo), "--auto-approve", "--report", str(report))
        assert done.code == 0, done
        results = _results(report)
        assert {n: results[n]["outcome"] for n in names} == dict.fromkeys(names, "applied")
        message = str(results["unreadable"]["message"])
        assert "no usable answer, but a read-back shows it took effect" in message
        assert sandbox.live_config("unreadable") is not None

        tenant_file = repo / "tenants" / "unreadable.yaml"
        data = yaml.safe_load(tenant_file.read_text())
        tenant_file.write_text(yaml.safe_dump({**data, "email": "absent"}))
        done = run_cli(
            "apply", str(repo), "--auto-approve", "--allow-delete", "--report", str(report)
        )
        assert done.code == 0, done
        deleted = _results(report)["unreadable"]
        assert deleted["outcome"] == "applied", deleted
        assert "read-back shows it took effect" in str(deleted["message"])
        assert sandbox.live_config("unreadable") is None
