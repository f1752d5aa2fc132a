"""`qlik-email fmt` and `fmt --check`: one canonical layout, comments kept,
idempotent, and never a change of meaning (the plan is the same before and after)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from reconciler.config.build import PROVIDER_KEYS
from reconciler.config.layout import key_order

SHUFFLED = """# yaml-language-server: $schema=../../schemas/tenant.schema.json
# Onboarded in OPS-12.
email:    # what the tenant sends with
  emailAddress: "qlik@{name}.example"
  password: "${{file:.secrets/{name}.smtp}}"   # rotated monthly
  username: "{name}"
  senderName: "Sender {name}"
auth: {{apiKey: "${{file:.secrets/{name}.apikey}}"}}
url: "{url}"
name: "{name}"
"""


def plan_tenants(cli, repo: Path) -> list[dict]:
    result = cli("plan", str(repo), "--format", "json")
    assert result.code == 0, result
    return json.loads(result.stdout)["tenants"]


def test_fmt_makes_one_layout_keeps_comments_and_the_plan(cli, sandbox, repo: Path):
    tenant = sandbox.tenants[0]
    path = repo / "tenants" / f"{tenant.name}.yaml"
    path.write_text(SHUFFLED.format(name=tenant.name, url=tenant.url))
    root = repo / "qlik-email.yaml"
    root.write_text(
        root.read_text()
        + "drift: {ignore: [{tenant: 'x', field: '*', reason: r, expires: 2030-01-01}]}\n"
    )
    before = plan_tenants(cli, repo)
    checked = cli("fmt", str(repo), "--check")
    assert checked.code == 1, checked
    assert (
        f"would reformat {path}" in checked.stdout
        or f"tenants/{tenant.name}.yaml" in checked.stdout
    )
    assert "qlik-email.yaml" in checked.stdout
    assert path.read_text() == SHUFFLED.format(name=tenant.name, url=tenant.url)  # unchanged
    done = cli("fmt", str(repo))
    assert done.code == 0, done
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/tenant.schema.json\n")
    assert "# Onboarded in OPS-12." in text and "# rotated monthly" in text
    assert "# what the tenant sends with" in text
    keys = [line.split(":")[0] for line in text.splitlines() if line and line[0].isalpha()]
    assert keys == ["name", "url", "auth", "email"]
    assert "\n  apiKey: ${file:" in text  # block style, no needless quotes
    email = [line.strip().split(":")[0] for line in text.split("email:")[1].splitlines()[1:]]
    assert email == ["username", "password", "emailAddress", "senderName"]
    assert "    - tenant: x\n" in root.read_text()
    assert plan_tenants(cli, repo) == before
    assert cli("validate", str(repo)).code == 0
    formatted = {p: p.read_bytes() for p in [root, *(repo / "tenants").iterdir()]}
    again = cli("fmt", str(repo), "--check")
    assert again.code == 0 and again.stdout == "", again
    assert cli("fmt", str(repo)).code == 0
    assert {p: p.read_bytes() for p in formatted} == formatted  # idempotent


def test_fmt_never_changes_what_a_value_means(cli, sandbox, repo: Path):
    root = repo / "qlik-email.yaml"
    root.write_text(
        root.read_text()
        + "  policy:\n    requireTls: no\n    senderDomains: ['on', \"0777\", 1e3]\n"
    )
    before = yaml.safe_load(root.read_text())
    assert cli("fmt", str(repo)).code == 0
    assert yaml.safe_load(root.read_text()) == before
    assert "'on'" in root.read_text()


def test_fmt_leaves_a_broken_file_alone(cli, sandbox, repo: Path):
    path = repo / "tenants" / f"{sandbox.tenants[0].name}.yaml"
    path.write_text(path.read_text() + "email: [unclosed\n")
    text = path.read_text()
    result = cli("fmt", str(repo))
    assert result.code == 1 and "not YAML that can be formatted" in result.stderr, result
    assert path.read_text() == text


def test_the_layout_takes_its_key_order_from_the_schemas():
    assert set().union(*PROVIDER_KEYS.values()) <= set(key_order("tenant")[("email",)])
    assert key_order("tenant")[()] == ("name", "url", "auth", "paused", "email")
    assert key_order("root")[("settings", "deadline")] == ("read", "write")
    assert key_order("root")[("drift", "ignore", "*")][0] == "tenant"


def test_the_pre_commit_hook_formats_the_repository():
    hooks = yaml.safe_load((Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "qlik-email-fmt")
    assert hook["entry"] == "qlik-email fmt" and hook["pass_filenames"] is False


def test_the_examples_are_formatted(cli):
    examples = Path(__file__).parents[2] / "examples"
    for repo in ("basic-auth", "microsoft365", "oem-fleet", "github"):
        result = cli("fmt", str(examples / repo), "--check")
        assert result.code == 0, result
