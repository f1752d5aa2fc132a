"""settings.policy: SMTP hosts, sender domains, requireTls; and how --base narrows
the security settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.config.hosts import host_allowed, narrow_hosts
from reconciler.config.narrow import narrow_settings
from reconciler.errors import ConfigError
from reconciler.model import Deadlines, IgnoreRule, Policy, Safety, Settings

ROOT = """\
defaults:
  auth:
    apiKey: ${env:QLIK_API_KEY}
  email:
    serverAddress: smtp.example.com
    serverPort: 587
    securityType: StartTLS
settings:
  policy:
POLICY
"""
TENANT = """\
name: acme
url: https://acme.eu.qlikcloud.com
email:
  username: AKIAEXAMPLE
  password: ${env:ACME_SMTP_PASSWORD}
  emailAddress: qlik@acme.example
EXTRA
"""


def write(tmp_path: Path, policy: str, extra: str = "") -> Path:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "qlik-email.yaml").write_text(ROOT.replace("POLICY", policy))
    (tmp_path / "tenants" / "acme.yaml").write_text(TENANT.replace("EXTRA", extra))
    return tmp_path


def issues(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [f"{Path(i.file).name}:{i.line}:{i.column}: {i.message}" for i in caught.value.issues]


def test_require_tls_refuses_an_unencrypted_password_at_its_line(tmp_path):
    repo = write(tmp_path, "    requireTls: true", "  securityType: none")
    assert issues(repo) == [
        "acme.yaml:7:17: securityType none would send the SMTP password unencrypted, "
        "and settings.policy.requireTls is set: use StartTLS or SSL/TLS"
    ]


def test_smtp_hosts_refuse_another_server(tmp_path):
    repo = write(
        tmp_path, "    smtpHosts: ['*.amazonaws.com']", "  serverAddress: smtp.evil.example"
    )
    assert issues(repo) == [
        "acme.yaml:7:18: SMTP host smtp.evil.example is not allowed by "
        "settings.policy.smtpHosts (*.amazonaws.com)"
    ]


def test_a_value_from_the_defaults_is_reported_at_the_tenant(tmp_path):
    repo = write(tmp_path, "    smtpHosts: ['*.amazonaws.com']")
    (message,) = issues(repo)
    assert message.startswith("acme.yaml:4:3: SMTP host smtp.example.com is not allowed")
    assert message.endswith("(the value comes from the root file's defaults)")


def test_sender_domains_refuse_another_domain(tmp_path):
    repo = write(tmp_path, "    senderDomains: ['corp.example']")
    (message,) = issues(repo)
    assert message.startswith("acme.yaml:6:17: sender domain acme.example is not allowed")


def test_a_tenant_within_the_policy_loads(tmp_path):
    repo = write(tmp_path, "    smtpHosts: ['smtp.example.com']\n    senderDomains: ['*.example']")
    assert load_config(repo).settings.policy == Policy(("smtp.example.com",), ("*.example",))


def test_validate_warns_about_an_unencrypted_password_without_require_tls(tmp_path, cli):
    repo = write(tmp_path, "    senderDomains: ['acme.example']", "  securityType: none")
    result = cli("validate", str(repo))
    assert result.code == 0
    assert "warning: tenant acme sends its SMTP password unencrypted" in result.stderr
    assert "acme.yaml:1:1:" in result.stderr


def test_hosts_are_narrowed_never_widened():
    assert narrow_hosts(["*", "a.qlikcloud.com", "*.com", "[::1]"], ["*.qlikcloud.com", "[::1]"])
    assert narrow_hosts(["*", "*.com"], ["*.qlikcloud.com"]) == ()
    assert narrow_hosts(["a.qlikcloud.com", "[::1]"], ["*.qlikcloud.com", "[::1]"]) == (
        "a.qlikcloud.com",
        "[::1]",
    )
    assert host_allowed("::1", ["[::1]"]) and not host_allowed("::1", ["*.qlikcloud.com"])


def test_a_glob_that_matches_a_base_glob_as_text_does_not_widen_it():
    base = ["127.0.0.1", "mail?.corp.example"]
    # `*` as text is one character that `?` matches: compared as a name it passed.
    assert narrow_hosts(["mail*.corp.example", "mail?.corp.example"], base) == (
        "mail?.corp.example",
    )
    assert narrow_hosts(["MAIL?.corp.example", "mail1.corp.example"], base) == (
        "MAIL?.corp.example",
        "mail1.corp.example",
    )
    assert narrow_hosts(["mail[1].corp.example", "mailxx.corp.example"], base) == ()
    assert narrow_hosts(["127.0.0.1", "127.0.0.2", "[::1]"], base) == ("127.0.0.1",)


def test_settings_under_base_are_the_base_s_narrowed_by_the_pull_request():
    rule = IgnoreRule("acme", "senderName", "known", date(2030, 1, 1))
    extra = IgnoreRule("*", "serverAddress", "silence everything", date(2030, 1, 1))
    base = Settings(
        allowed_hosts=("*.qlikcloud.com",),
        safety=Safety(max_changes=5, max_deletes_percent=10.0),
        ignore=(rule,),
        policy=Policy(smtp_hosts=("*.amazonaws.com",)),
    )
    wanted = Settings(
        concurrency=8,
        allowed_hosts=("*",),
        safety=Safety(max_changes=500, max_deletes=1),
        ignore=(rule, extra),
        policy=Policy(smtp_hosts=("*",), sender_domains=("acme.example",), require_tls=True),
    )
    got = narrow_settings(wanted, base)
    assert got.concurrency == 8
    assert got.timeout_s == 30.0
    # Numbers only ever tighten: more concurrency or a longer timeout is not taken.
    looser = narrow_settings(
        Settings(concurrency=500, timeout_s=600.0), replace(base, concurrency=16)
    )
    assert (looser.concurrency, looser.timeout_s) == (16, 30.0)
    assert got.allowed_hosts == ()
    assert got.safety == Safety(max_changes=5, max_deletes=1, max_deletes_percent=10.0)
    assert got.ignore == (rule,)
    assert got.policy == Policy((), ("acme.example",), True)
    # A pull request that leaves the hosts unset gets the base's list.
    assert narrow_settings(Settings(), base).allowed_hosts == ("*.qlikcloud.com",)


def test_a_pull_request_can_shorten_the_deadlines_but_never_lengthen_them() -> None:
    base = Settings(deadlines=Deadlines(read_s=30.0, write_s=100.0))
    wanted = Settings(deadlines=Deadlines(read_s=600.0, write_s=20.0))
    assert narrow_settings(wanted, base).deadlines == Deadlines(read_s=30.0, write_s=20.0)
    assert narrow_settings(Settings(), Settings()).deadlines == Deadlines(45.0, 120.0)
