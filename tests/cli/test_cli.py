"""The CLI as a user meets it: exit codes, messages, formats."""

from __future__ import annotations

import gc
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from reconciler import __version__
from reconciler.jsonschemas import load_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / "qlik-email.yaml").exists())


def test_version_names_the_package_and_python(cli):
    result = cli("--version")
    assert result.code == 0
    assert result.stdout.strip() == f"qlik-email {__version__} (Python {platform.python_version()})"


def test_color_forces_colours_even_into_a_pipe(cli, repo):
    assert "\x1b[" in cli("--color", "plan", str(repo)).stdout
    assert "\x1b[" not in cli("plan", str(repo)).stdout  # captured: not a terminal
    assert "\x1b[" not in cli("--no-color", "plan", str(repo)).stdout


def test_help_lists_commands(cli):
    result = cli("--help")
    assert result.code == 0
    for command in ("validate", "plan", "apply", "drift", "import", "sandbox", "demo"):
        assert command in result.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(cli, example):
    result = cli("validate", str(example))
    assert result.code == 0, result
    assert result.stdout.startswith("Configuration valid:")


def test_malformed_file_exits_1_with_position_and_no_traceback(cli, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "basic-auth", repo)
    tenant = repo / "tenants" / "acme.yaml"
    tenant.write_text(tenant.read_text().replace("serverPort", "serverPrt", 1))
    result = cli("validate", str(repo))
    assert result.code == 1
    assert "acme.yaml:" in result.stderr
    assert "did you mean 'serverPort'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_config_contacts_no_tenant(cli, sandbox, repo):
    (repo / "tenants" / "tenant-001.yaml").write_text("name: tenant-001\nurl: [unclosed\n")
    sandbox.reset_stats()
    result = cli("plan", str(repo))
    assert result.code == 1
    assert "tenant-001.yaml:3:1: invalid YAML" in result.stderr
    assert sandbox.stats.requests == 0


def test_usage_error_exits_1(cli):
    result = cli("plan", "--format", "yaml")
    assert result.code == 1
    assert "Invalid value for '--format'" in result.stderr


def test_unknown_tenant_is_an_error(cli, repo):
    result = cli("plan", str(repo), "--tenant", "nope")
    assert result.code == 1
    assert "--tenant nope: no such tenant" in result.stderr


def test_plan_json_validates_against_schema(cli, repo):
    result = cli("plan", str(repo), "--format", "json")
    assert result.code == 0, result
    document = json.loads(result.stdout)
    jsonschema.Draft202012Validator(load_schema("plan.schema.json")).validate(document)
    assert document["summary"]["create"] == 4


def test_plan_markdown_and_detailed_exitcode(cli, repo):
    result = cli("plan", str(repo), "--format", "markdown", "--detailed-exitcode")
    assert result.code == 2
    assert result.stdout.startswith("## qlik-email plan")
    assert "**Plan: 4 to create, 0 to update, 0 to delete, 0 unchanged.**" in result.stdout


def test_plan_for_one_tenant_and_one_shard(cli, repo):
    one = cli("plan", str(repo), "--tenant", "tenant-002", "--format", "json")
    assert [t["name"] for t in json.loads(one.stdout)["tenants"]] == ["tenant-002"]
    shards = [
        json.loads(cli("plan", str(repo), "--shard", f"{i}/2", "--format", "json").stdout)
        for i in (1, 2)
    ]
    names = sorted(t["name"] for doc in shards for t in doc["tenants"])
    assert names == ["tenant-001", "tenant-002", "tenant-003", "tenant-004"]


def test_an_unreadable_tenant_is_said_alike_by_plan_apply_and_drift(cli, sandbox, repo):
    path = repo / "tenants" / "tenant-003.yaml"
    path.write_text(path.read_text().replace(sandbox.base_url, "http://127.0.0.1:9"))
    line = "xx tenant-003 (http://127.0.0.1:9/t/tenant-003): could not be read: could not reach"
    message = "Error: 1 tenant(s) could not be read; see the report.\n"
    plan = cli("plan", str(repo), "--format", "text")
    assert plan.code == 1 and plan.stdout.startswith(line) and plan.stderr == message
    assert "Plan: 3 to create" in plan.stdout
    applied = cli("apply", str(repo), "--auto-approve")
    assert applied.code == 1 and applied.stderr == message
    assert applied.stdout.count(line) == 2  # in the plan, then in the report
    assert "no-op" not in applied.stdout and "3 applied" in applied.stdout
    drift = cli("drift", str(repo))
    assert drift.code == 1 and line in drift.stdout and drift.stderr == message


def test_plan_refuses_cmd_reference_for_api_credentials(cli, sandbox, repo, tmp_path):
    marker = tmp_path / "ran"
    path = repo / "tenants" / "tenant-001.yaml"
    text = path.read_text()
    start = text.index("${file:.secrets/tenant-001.apikey}")
    path.write_text(text[:start] + f"${{cmd:touch {marker}}}" + text[start + 34 :])
    result = cli("plan", str(repo))
    assert result.code == 1
    assert "command references are not run by this command" in result.stdout
    assert not marker.exists()


def test_apply_without_auto_approve_refuses_when_not_interactive(cli, sandbox, repo):
    result = cli("apply", str(repo))
    assert result.code == 1
    assert "--auto-approve" in result.stderr
    assert "Usage:" not in result.stderr  # the command line was valid
    assert all(sandbox.live_config(t.name) is None for t in sandbox.tenants)


def test_drift_reports_out_of_band_edit_and_health(cli, sandbox, repo, tmp_path):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    assert cli("drift", str(repo)).code == 0
    sandbox.edit("tenant-001", senderName="Edited")
    sandbox.break_password("tenant-003")
    report = tmp_path / "drift.json"
    result = cli("drift", str(repo), "--verify", "--report", str(report))
    assert result.code == 2, result
    assert 'senderName: live "Edited", desired "Tenant 001"' in result.stdout
    document = json.loads(report.read_text())
    jsonschema.Draft202012Validator(load_schema("drift-report.schema.json")).validate(document)
    status = {t["name"]: t["status"] for t in document["tenants"]}
    assert status == {
        "tenant-001": "drifted",
        "tenant-002": "clean",
        "tenant-003": "unhealthy",
        "tenant-004": "clean",
    }
    verified = {t["name"]: t["verify"]["ok"] for t in document["tenants"]}
    assert verified == {"tenant-001": True, "tenant-002": True, "tenant-003": False,
                        "tenant-004": True}  # fmt: skip
    live = document["tenants"][0]["live"]
    assert live["provider"] == "BasicAuth" and live["senderName"] == "Edited"
    assert live["serverPort"] == sandbox.smtp_ports["StartTLS"]


def test_drift_fleet_views(cli, sandbox, repo, tmp_path):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    sandbox.edit("tenant-001", senderName="<b>Edited</b>")
    table = tmp_path / "views" / "fleet.csv"
    page = cli("drift", str(repo), "--format", "html", "--csv", str(table))
    assert page.code == 2, page
    assert page.stdout.startswith("<!DOCTYPE html>") and page.stdout.endswith("</html>\n")
    assert page.stdout.count('<tr data-status="') == 4
    assert "&lt;b&gt;Edited&lt;/b&gt;" in page.stdout and "<b>Edited" not in page.stdout
    lines = table.read_text().splitlines()
    assert lines[0].startswith("tenant,url,status,provider,smtpHost,smtpPort,senderAddress")
    assert [line.split(",")[2] for line in lines[1:]] == ["drifted", "clean", "clean", "clean"]
    html_file = tmp_path / "fleet.html"
    text = cli("drift", str(repo), "--html", str(html_file))
    assert text.code == 2 and "Drift: 1 drifted" in text.stdout
    assert html_file.read_text().count('<tr data-status="') == 4
    assert cli("drift", str(repo), "--format", "csv").stdout == table.read_bytes().decode()


def test_drift_ignore_rule_is_clean_until_it_expires(cli, sandbox, repo, monkeypatch):
    assert cli("apply", str(repo), "--auto-approve").code == 0
    sandbox.edit("tenant-001", senderName="Rebranded")
    root = repo / "qlik-email.yaml"
    root.write_text(
        root.read_text()
        + "drift:\n  ignore:\n    - tenant: tenant-00[1]\n      field: senderName\n"
        + '      reason: "rebrand, OPS-42"\n      expires: 2026-12-31\n'
    )
    monkeypatch.setenv("QLIK_EMAIL_TODAY", "2026-12-31")  # the last day the rule holds
    clean = cli("drift", str(repo))
    assert clean.code == 0, clean
    assert "(ignored) senderName: rebrand, OPS-42" in clean.stdout
    monkeypatch.setenv("QLIK_EMAIL_TODAY", "2027-01-01")
    expired = cli("drift", str(repo))
    assert expired.code == 2, expired
    assert 'senderName: live "Rebranded", desired "Tenant 001"' in expired.stdout
    monkeypatch.setenv("QLIK_EMAIL_TODAY", "next week")
    assert "QLIK_EMAIL_TODAY must be a date" in cli("drift", str(repo)).stderr


def test_demo_runs_end_to_end(cli):
    result = cli("demo")
    assert result.code == 0, result.stderr
    assert "Plan: 0 to create, 0 to update, 0 to delete, 4 unchanged." in result.stdout
    assert "Drift: 0 drifted, 0 unhealthy, 0 unreadable, 4 clean." in result.stdout
    assert "a temporary directory deleted when the demo ends" in result.stdout
    assert "qlik-email demo --keep DIR" in result.stdout


def test_help_texts_are_complete(cli):
    assert "How many tenants the fleet has" in cli("sandbox", "--help").stdout
    merge = cli("report", "--help").stdout
    assert "Merge the JSON reports of shards into one report." in merge
    assert "show" in cli("--help").stdout


def test_console_script_starts(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "Manage the e-mail configuration" in done.stdout


def test_the_script_ends_with_its_exit_code_and_its_output_flushed(tmp_path):
    (tmp_path / "qlik-email.yaml").write_text("version: 1\ntenants: tenants/*.yaml\n")
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.rstrip().endswith("matches no file")  # the last line made it out
    listing = subprocess.run(
        [sys.executable, "-m", "reconciler", "--help"],
        stdout=subprocess.PIPE,
        check=False,
    )
    assert listing.returncode == 0 and listing.stdout.endswith(b"\n")


def test_the_script_tunes_the_collector_for_a_run_and_for_its_exit(monkeypatch):
    # Both measured in bench/NOTES.md ("Garbage collector"); only the process's
    # entry point does it, not the engine's Python API.
    from reconciler.cli import app

    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []

    def command() -> int:
        seen.append(gc.get_threshold())
        return 3

    monkeypatch.setattr(app, "main", command)
    try:
        with pytest.raises(SystemExit) as ended:
            app.run()
        assert ended.value.code == 3
        assert seen == [(app.GC_YOUNG_THRESHOLD, *before[1:])]
        assert gc.get_freeze_count() > 0  # frozen once the command returned
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


class FakeTerminal:
    """A stdin that says it is a terminal and answers one line."""

    def __init__(self, answer: str) -> None:
        self.lines = [answer + "\n"]

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.lines.pop(0) if self.lines else ""

    def read(self, *_: object) -> str:
        return self.readline()

    def fileno(self) -> int:
        raise OSError("not a real terminal")


@pytest.mark.parametrize(("answer", "code", "applied"), [("yes", 0, True), ("no", 1, False)])
def test_apply_asks_for_confirmation_on_a_terminal(
    cli, sandbox, repo, monkeypatch, answer, code, applied
):
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answer))
    result = cli("apply", str(repo))
    assert result.code == code, result
    assert "Do you want to apply these changes?" in result.stdout
    assert (sandbox.live_config("tenant-001") is not None) is applied


def test_plan_says_when_apply_will_need_allow_delete(cli, sandbox, repo, tmp_path):
    sandbox.seed("tenant-004", sandbox.basic_auth_body("tenant-004"))
    path = repo / "tenants" / "tenant-004.yaml"
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**data, "email": "absent"}))
    saved, markdown = tmp_path / "plan.json", tmp_path / "plan.md"
    result = cli("plan", str(repo), "--out", str(saved), "--markdown", str(markdown))
    assert result.code == 0, result
    assert "Note: apply will need --allow-delete: the plan deletes" in result.stdout
    assert json.loads(saved.read_text())["applyNeeds"][0]["flag"] == "--allow-delete"
    assert ":warning: apply will need `--allow-delete`" in markdown.read_text()
    refused = cli("apply", str(saved), "--config", str(repo))
    assert refused.code == 1 and "--allow-delete" in refused.stderr


def test_a_saved_plan_applied_twice_is_already_applied(cli, sandbox, repo, tmp_path):
    saved = tmp_path / "plan.json"
    assert cli("plan", str(repo), "--out", str(saved)).code == 0
    first = cli("apply", str(saved), "--config", str(repo))
    assert first.code == 0, first
    again = cli("apply", str(saved), "--config", str(repo))
    assert again.code == 0, again
    assert again.stdout.count("already applied") == 4
    names = [t.name for t in sandbox.tenants]
    assert [line.strip() for line in again.stdout.splitlines()[:4]] == [
        f"{name}: already applied" for name in names
    ]
    assert "create unchanged" not in again.stdout
    assert "changed since the plan was made" not in again.stdout
    assert "0 applied, 0 verify failed, 0 failed, 0 skipped, 4 unchanged" in again.stdout


def test_show_renders_a_saved_plan_and_plan_points_to_it(cli, repo, tmp_path):
    saved = tmp_path / "plan.json"
    made = cli("plan", str(repo), "--out", str(saved))
    assert made.code == 0
    shown = cli("show", str(saved))
    assert shown.code == 0 and shown.stdout == made.stdout
    assert cli("show", str(saved), "--format", "markdown").stdout.startswith("## qlik-email plan")
    again = json.loads(cli("show", str(saved), "--format", "json").stdout)
    assert again["tenants"] == json.loads(saved.read_text())["tenants"]
    wrong = cli("plan", str(saved))
    assert wrong.code == 1 and "Usage" not in wrong.stderr
    assert f"show it with `qlik-email show {saved}`" in wrong.stderr
    assert "schema" not in wrong.stderr and wrong.stderr.count("\n") == 1
    foreign = tmp_path / "other.json"
    foreign.write_text('{"kind": "qlik-email/plan", "tenants": 3}')
    refused = cli("show", str(foreign))
    assert refused.code == 1 and "not a plan this version of qlik-email can apply" in refused.stderr


def test_validate_selects_tenants_and_speaks_json(cli, repo, tmp_path):
    one = cli("validate", str(repo), "--tenant", "tenant-002")
    assert one.code == 0 and one.stdout.startswith(
        "Configuration valid: 1 tenant(s) (0 BasicAuth, 1 Microsoft365"
    )
    assert cli("validate", str(repo), "--tenant", "nobody").code == 1
    document = json.loads(cli("validate", str(repo), "--format", "json").stdout)
    schema = json.loads((ROOT / "schemas" / "validation.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["valid"] and len(document["tenants"]) == 4
    (repo / "tenants" / "tenant-001.yaml").write_text("name: [oops\n")
    bad = cli("validate", str(repo), "--format", "json")
    assert bad.code == 1
    broken = json.loads(bad.stdout)
    jsonschema.Draft202012Validator(schema).validate(broken)
    assert not broken["valid"] and broken["errors"][0]["file"].endswith("tenant-001.yaml")


def test_sandbox_commands_without_the_extra_print_the_install_hint(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_aiohttp(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "aiohttp" or name.startswith("aiohttp."):
            raise ModuleNotFoundError("No module named 'aiohttp'", name="aiohttp")
        return real_import(name, *args, **kwargs)

    for module in [
        m for m in sys.modules if m.startswith(("reconciler.sandbox", "reconciler.cli.demo"))
    ]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", without_aiohttp)
    from conftest import run_cli

    for command in (["demo"], ["sandbox", "--tenants", "2"]):
        result = run_cli(*command)
        assert result.code == 1, result
        assert "pip install 'qlik-email[sandbox]'" in result.stderr
        assert "Internal error" not in result.stderr
