"""Loading and validating configuration repositories (reconciler/config/)."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from reconciler.config import files as config_files
from reconciler.config import load_config
from reconciler.config import source as config_source
from reconciler.config.checks import email_problem, url_problem
from reconciler.config.loader import ConfigLoad
from reconciler.config.schema import load_schema, schema_issues
from reconciler.config.source import read_document
from reconciler.config.words import suggest
from reconciler.errors import ConfigError, ConfigIssue
from reconciler.model import (
    SECURITY_TYPES,
    ApiKeyAuth,
    Deadlines,
    DesiredState,
    IgnoreRule,
    OAuthAuth,
    Provider,
    Safety,
    SourcePos,
    TenantSpec,
)
from reconciler.secrets import SecretRef

DATA = Path(__file__).parents[1] / "data" / "config"
EXAMPLES = Path(__file__).parents[2] / "examples"
SCHEMAS = Path(__file__).parents[2] / "schemas"
ROOT = "qlik-email.yaml"
ACME = "tenants/acme.yaml"

# (fixture directory, file, line, column, a phrase of the message)
CASES = [
    ("broken-yaml", ACME, 5, 11, "invalid YAML"),
    ("tab-indent", ACME, 6, 1, "tab"),
    ("two-documents", ACME, 7, 1, "one YAML document"),
    ("duplicate-yaml-key", ACME, 6, 3, "duplicate key 'username' (first written on line 4)"),
    ("billion-laughs", ACME, 7, 5, "anchors and aliases"),
    ("deep-nesting", ACME, 7, 39, "nested more than 32 levels"),
    ("non-utf8", ACME, 6, 21, "not valid UTF-8"),
    ("control-character", ACME, 4, 17, "control character U+0007"),
    ("custom-tag", ACME, 4, 13, "unsupported YAML tag !!python/name:os.system"),
    ("top-level-list", ACME, 1, 1, "must be a mapping with name, url and email, got a list"),
    ("empty-tenant-file", ACME, 1, 1, "the tenant file is empty"),
    ("tenant-file-is-directory", "tenants/zeta.yaml", 1, 1, "is a directory"),
    ("glob-matches-nothing", ROOT, 10, 5, "tenants glob 'customers/*.yaml' matches no file"),
    ("root-and-yml-root", "qlik-email.yml", 1, 1, "keep one"),
    (
        "unknown-key",
        ACME,
        4,
        3,
        "unknown key 'serverAdress' in email (did you mean 'serverAddress'?)",
    ),
    ("unknown-top-level-key", ROOT, 8, 1, "unknown key 'tenant' at the top level (did you mean"),
    ("yaml-boolean-key-on", ACME, 7, 1, "unknown key 'on'"),
    ("missing-name", ACME, 1, 1, "missing required key 'name'"),
    ("bad-name", ACME, 1, 7, "name must be 1 to 63 letters"),
    ("name-trailing-newline", ACME, 1, 7, "name must be 1 to 63 letters"),
    (
        "name-not-a-string",
        ACME,
        1,
        7,
        'name must be a string, got integer 007 (put it in quotes: "007")',
    ),
    ("null-value", ACME, 4, 14, "senderName must be a string, got an empty value"),
    ("port-not-a-number", ACME, 4, 15, "serverPort must be an integer, got string '587x'"),
    (
        "port-quoted",
        ROOT,
        6,
        17,
        "serverPort must be an integer, got string '587' (remove the quotes)",
    ),
    ("port-zero", ACME, 4, 15, "serverPort must be at least 1, got integer 0"),
    ("port-too-big", ACME, 4, 15, "serverPort must be at most 65535"),
    ("security-type-case", ACME, 4, 17, "got string 'starttls' (did you mean 'StartTLS'?)"),
    ("security-type-ssl", ROOT, 7, 19, "(did you mean 'SSL/TLS'?)"),
    ("unknown-provider", ACME, 4, 13, "(did you mean 'Microsoft365'?)"),
    ("server-address-url", ROOT, 5, 20, "must be a host name such as smtp.example.com, not a URL"),
    ("bad-email-address", ACME, 6, 17, "'qlik@acme' is not a valid e-mail address"),
    ("email-maybe", ACME, 3, 8, "or the string 'absent'"),
    ("duplicate-tenant-name", "tenants/globex.yaml", 1, 7, "already used by tenants/acme.yaml:1:7"),
    (
        "duplicate-tenant-url",
        "tenants/globex.yaml",
        2,
        6,
        "already the address of tenants/acme.yaml",
    ),
    ("http-public-host", ACME, 2, 6, "allowed only for loopback hosts"),
    ("missing-scheme", ACME, 2, 6, "did you mean https://acme.eu.qlikcloud.com?"),
    ("url-query-string", ACME, 2, 6, "must not contain a query string"),
    ("url-user-info", ACME, 2, 6, "must not contain a user name or password"),
    (
        "literal-password",
        ACME,
        5,
        13,
        "password must be a secret reference such as ${env:ACME_SMTP_",
    ),
    (
        "literal-api-key",
        ROOT,
        3,
        13,
        "auth.apiKey must be a secret reference such as ${env:QLIK_API_KEY}",
    ),
    ("literal-client-secret", ACME, 6, 17, "email.clientSecret must be a secret reference"),
    (
        "literal-oauth-client-secret",
        ACME,
        10,
        19,
        "auth.oauth.clientSecret must be a secret reference",
    ),
    ("malformed-reference", ACME, 5, 13, "${env:1BAD}: not a valid environment variable name"),
    ("unknown-reference-kind", ACME, 5, 13, "unknown secret reference kind 'vault'"),
    ("unclosed-reference", ACME, 5, 13, "not closed: it must end with '}'"),
    ("oauth-client-id-bad-reference", ACME, 9, 15, "${env:QLIK CLIENT}: not a valid environment"),
    ("auth-both-kinds", ACME, 7, 1, "exactly one of apiKey or oauth"),
    ("missing-auth", ACME, 1, 1, "tenant 'acme' has no auth"),
    (
        "missing-required-after-merge",
        ACME,
        3,
        1,
        "email is missing username, required for provider BasicAuth",
    ),
    (
        "field-of-other-provider",
        ACME,
        4,
        3,
        "clientId is a Microsoft365 setting, but this tenant's provider is BasicAuth",
    ),
    ("version-2", ROOT, 1, 10, "version must be 1"),
    ("concurrency-zero", ROOT, 9, 16, "settings.concurrency must be at least 1"),
    ("timeout-too-long", ROOT, 9, 12, "settings.timeout must be at most 600"),
    ("deadline-zero", ROOT, 9, 20, "settings.deadline.read must be greater than 0"),
    ("deadline-too-long", ROOT, 10, 12, "settings.deadline.write must be at most 3600"),
    ("percent-over-100", ROOT, 10, 24, "maxDeletesPercent must be at most 100"),
    ("ignore-rule-without-reason", ROOT, 10, 7, "missing required key 'reason' in drift.ignore[0]"),
    ("ignore-rule-bad-expires", ROOT, 13, 16, "'2026-02-30' is not a valid date"),
    ("ignore-rule-unknown-field", ROOT, 11, 14, "(did you mean 'senderName'?)"),
    # Hostile text: files outside the repository, unbounded globs, quoted values.
    ("glob-absolute", ROOT, 10, 5, "tenants glob '/etc/*' must be relative"),
    ("glob-parent-dir", ROOT, 10, 5, "must not contain '..'"),
    ("glob-too-deep", ROOT, 10, 5, "goes deeper than 16 directories"),
    ("symlink-tenant-outside", "tenants/stolen.yaml", 1, 1, "outside the configuration"),
    ("symlink-tenants-dir-outside", "tenants", 1, 1, "symbolic link to a path outside"),
    ("symlink-root-outside", ROOT, 1, 1, "symbolic link to a path outside"),
    ("pem-tenant-file", "tenants/key.yaml", 1, 1, "must be a mapping with name, url and email"),
    (
        "long-email-address",
        ACME,
        6,
        17,
        "'qlik.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'",
    ),
    ("key-with-newline", ACME, 7, 1, "unknown key '\\n::error file=x.yaml::pwned'"),
    ("escape-sequence-value", ACME, 6, 17, "got string '\\x1b]8;;https://evil.example\\x07"),
    ("bidi-control-value", ACME, 6, 18, "'smtp.\\u202eelpmaxe.com' is not a valid host name"),
    ("reference-with-newline", ACME, 5, 13, "${file:x\\n::stop-commands::tok}: a secret"),
]


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with each YAML parser: positions must not depend on which one is installed."""
    if request.param == "libyaml":
        if not yaml.__with_libyaml__:
            pytest.skip("PyYAML was built without libyaml")
        monkeypatch.setattr(config_source, "_LOADER", yaml.CSafeLoader)
    else:
        monkeypatch.setattr(config_source, "_LOADER", yaml.SafeLoader)
    return str(request.param)


def _issues(path: Path | str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.issues


def _copy_case(case: str, tmp_path: Path) -> Path:
    target = tmp_path / case
    shutil.copytree(DATA / case, target)
    return target


@pytest.mark.parametrize(
    ("case", "file", "line", "column", "phrase"), CASES, ids=[c[0] for c in CASES]
)
def test_invalid_config_is_reported_at_the_offending_spot(
    case: str,
    file: str,
    line: int,
    column: int,
    phrase: str,
    yaml_parser: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(DATA / case)
    issues = _issues(".")
    assert [(i.file, i.line, i.column) for i in issues] == [(file, line, column)], issues
    assert phrase in issues[0].message


def test_fixture_cases_cover_every_error_class() -> None:
    fixtures = {path.name for path in DATA.iterdir() if path.is_dir()}
    assert {case for case, *_ in CASES} <= fixtures
    assert len(CASES) >= 30


def test_valid_fixture_base_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA / "valid-minimal")
    state = load_config(".")
    assert [tenant.name for tenant in state.tenants] == ["acme"]


def test_all_problems_of_all_files_are_reported_together_and_sorted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(DATA / "many-broken-files")
    issues = _issues(".")
    assert [(i.file, i.line, i.column) for i in issues] == [
        (ROOT, 9, 16),
        (ACME, 2, 6),
        ("tenants/beta.yaml", 5, 1),
        ("tenants/gamma.yaml", 4, 3),
        ("tenants/gamma.yaml", 6, 13),
    ]


def test_error_message_lists_every_issue_with_its_position(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA / "many-broken-files")
    with pytest.raises(ConfigError) as caught:
        load_config(".")
    lines = str(caught.value).splitlines()
    assert lines[0] == "5 errors in the configuration"
    assert lines[1].startswith("qlik-email.yaml:9:16: settings.concurrency")


def test_no_secret_value_appears_in_any_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA / "secret-literals")
    issues = _issues(".")
    assert len(issues) == 10
    everything = "\n".join(str(issue) for issue in issues)
    for leak in ("S3cr3t-LEAK", "31415926535897932", b"S3cr3t-LEAK".hex()):
        assert leak not in everything


def test_files_are_named_relative_to_the_current_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    issues = _issues("literal-password")
    assert issues[0].file == os.path.join("literal-password", "tenants", "acme.yaml")


def test_files_outside_the_current_directory_are_named_by_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = _copy_case("literal-password", tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert _issues(case)[0].file == str(case / "tenants" / "acme.yaml")


def test_file_over_one_mebibyte_is_not_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = _copy_case("valid-minimal", tmp_path)
    with (case / ACME).open("a") as handle:
        handle.write("# padding\n" * 110_000)
    monkeypatch.chdir(case)
    issues = _issues(".")
    assert [(i.file, i.line, i.column) for i in issues] == [(ACME, 1, 1)]
    assert "larger than 1 MiB" in issues[0].message


def _stat_says(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the loader's stat report `size` bytes (as if the file grew after it)."""
    real_stat = os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        info = real_stat(path, *args, **kwargs)
        if str(path).endswith(".yaml"):
            fields = list(info)
            fields[6] = size  # st_size
            return os.stat_result(fields)
        return info

    monkeypatch.setattr(config_source.os, "stat", stat)


def test_file_that_grew_after_its_stat_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("name: acme\nurl: https://acme.eu.qlikcloud.com\nemail: absent\n")
    _stat_says(4, monkeypatch)
    doc, issues = read_document(path, "acme.yaml")
    assert not issues and doc is not None
    assert doc.data == {"name": "acme", "url": "https://acme.eu.qlikcloud.com", "email": "absent"}


def test_file_that_grew_over_one_mebibyte_after_its_stat_is_not_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("name: acme\n" + "# padding\n" * 110_000)
    _stat_says(11, monkeypatch)
    doc, issues = read_document(path, "acme.yaml")
    assert doc is None
    assert "larger than 1 MiB" in issues[0].message


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = _copy_case("valid-minimal", tmp_path)
    (case / ACME).chmod(0)
    try:
        if os.access(case / ACME, os.R_OK):
            pytest.skip("this user can read a chmod 000 file (root); see tenant-file-is-directory")
        monkeypatch.chdir(case)
        issues = _issues(".")
    finally:
        (case / ACME).chmod(0o644)
    assert [(i.file, i.line, i.column) for i in issues] == [(ACME, 1, 1)]
    assert "cannot read the file" in issues[0].message


def test_hostile_yaml_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Deep flow nesting is quadratic in PyYAML's scanner and crashes libyaml's composer;
    # exponential aliases blow up memory. Each must be refused in well under a second.
    case = _copy_case("valid-minimal", tmp_path)
    laughs = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 30))
    hostile = {"deep.yaml": "a: " + "[" * 1_000_000, "laughs.yaml": "l0: &l0 [lol]\n" + laughs}
    for name, text in hostile.items():
        (case / "tenants" / name).write_text(text)
    monkeypatch.chdir(case)
    started = time.perf_counter()
    issues = _issues(".")
    assert time.perf_counter() - started < 2
    assert {i.file for i in issues} == {"tenants/deep.yaml", "tenants/laughs.yaml"}


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    issues = _issues(tmp_path / "nowhere")
    assert issues[0].message == "no such file or directory"


def test_a_tenant_file_passed_as_root_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA / "valid-minimal")
    assert "this is a tenant file" in _issues(ACME)[0].message


def test_root_file_may_be_given_directly() -> None:
    state = load_config(EXAMPLES / "basic-auth" / ROOT)
    assert state.root == (EXAMPLES / "basic-auth").resolve()
    assert [tenant.name for tenant in state.tenants] == ["acme"]


def test_root_file_may_be_named_yml(tmp_path: Path) -> None:
    case = _copy_case("valid-minimal", tmp_path)
    (case / ROOT).rename(case / "qlik-email.yml")
    assert load_config(case).tenants[0].name == "acme"


def test_directory_without_root_file_uses_default_tenant_globs(tmp_path: Path) -> None:
    case = _copy_case("valid-minimal", tmp_path)
    (case / ROOT).unlink()
    (case / ACME).unlink()
    # Without defaults the tenant carries everything itself; *.yml is found too.
    (case / "tenants" / "acme.yml").write_text(
        "name: acme\n"
        "url: https://acme.eu.qlikcloud.com\n"
        "auth: {apiKey: '${env:QLIK_API_KEY}'}\n"
        "email: {serverAddress: smtp.acme.example, serverPort: 25, securityType: none,\n"
        "        username: u, password: '${env:PW}', emailAddress: qlik@acme.example}\n"
    )
    state = load_config(case)
    assert state.root == case.resolve()
    assert state.tenants[0].email is not None
    assert state.tenants[0].email.as_dict()["serverPort"] == 25


def test_missing_settings_without_root_file_point_at_the_root_file_name(tmp_path: Path) -> None:
    case = _copy_case("valid-minimal", tmp_path)
    (case / ROOT).unlink()
    messages = [issue.message for issue in _issues(case)]
    assert messages[-1].endswith("or under defaults.email in qlik-email.yaml")


def test_directory_without_root_file_or_tenants_is_an_error(tmp_path: Path) -> None:
    issues = _issues(tmp_path)
    assert "no qlik-email.yaml here" in issues[0].message


def test_empty_root_file_means_no_defaults(tmp_path: Path) -> None:
    case = _copy_case("valid-minimal", tmp_path)
    (case / ROOT).write_text("# nothing to share\n")
    messages = [issue.message for issue in _issues(case)]
    assert len(messages) == 2
    assert messages[0].startswith("tenant 'acme' has no auth")
    assert messages[1].startswith("email is missing serverAddress, serverPort, securityType,")


def test_tenant_globs_may_be_a_list_and_recursive(tmp_path: Path) -> None:
    case = _copy_case("valid-minimal", tmp_path)
    (case / "fleet" / "eu").mkdir(parents=True)
    shutil.move(case / ACME, case / "fleet" / "eu" / "acme.yaml")
    beta = (case / "fleet" / "eu" / "acme.yaml").read_text().replace("acme", "beta")
    (case / "more").mkdir()
    (case / "more" / "beta.yaml").write_text(beta)
    with (case / ROOT).open("a") as handle:
        handle.write("tenants: [fleet/**/*.yaml, more/*.yaml]\n")
    assert [t.name for t in load_config(case).tenants] == ["acme", "beta"]


@pytest.mark.parametrize("case_sensitive", [True, False])
def test_tenant_files_come_in_the_order_of_their_paths(
    case_sensitive: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The order decides which of two files naming one tenant is reported: that
    # of the Paths, part by part ("a/x" before "a-b/x", though "-" < "/").
    monkeypatch.setattr(config_files, "_CASE_SENSITIVE", case_sensitive)
    expansion = config_files.new_expansion(Path("repo/x"))
    expansion.matches |= {
        ("a-b", "x.yaml"),
        ("a", "x.yaml"),
        ("a",),
        ("B.yaml",),
        ("b.yaml",),
        ("a", "b", "c.yaml"),
        ("é.yaml",),
        ("_.yaml",),
    }
    paths = {Path("repo/x", *rel) for rel in expansion.matches}
    assert expansion.found() == sorted(paths)


@pytest.mark.parametrize("cwd", [".", "repo", "repo/tenants", "repo/tenants/eu", "..odd", "/"])
def test_display_names_are_those_of_display_name(
    cwd: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = ["repo", "repo/tenants", "repo/tenants/eu", "..odd", "..odd/x", "other", ""]
    files = ["acme.yaml", "..x.yaml", "-x.yaml", "::error x.yaml", "a\nb.yaml", "\x1b[31m.yaml"]
    files += ["é.yaml", ".hidden.yaml", "..", "_.yaml", "7.yaml"]
    for folder in folders:
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path / cwd)
    paths = [tmp_path / folder / name for folder in folders for name in files]
    paths += [Path(os.path.relpath(path)) for path in paths]
    names = config_source.DisplayNames()
    assert [names(path) for path in paths] == [config_source.display_name(p) for p in paths]


def test_tenant_names_are_unique_regardless_of_case(tmp_path: Path) -> None:
    case = _copy_case("valid-minimal", tmp_path)
    other = (
        (case / ACME)
        .read_text()
        .replace("name: acme", "name: ACME")
        .replace("https://acme", "https://b")
    )
    (case / "tenants" / "b.yaml").write_text(other)
    issues = _issues(case)
    assert len(issues) == 1 and "tenant name 'ACME' is already used" in issues[0].message


def test_plain_http_is_accepted_for_loopback_hosts_the_list_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(DATA / "http-loopback-host")
    urls = [tenant.url for tenant in load_config(".").tenants]
    assert urls == ["http://127.0.0.1:8443", "http://localhost:9000/qlik", "http://[::1]:9001"]


def test_loopback_hosts_are_refused_unless_the_list_names_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(DATA / "http-loopback-host")
    with pytest.raises(ConfigError) as caught:
        load_config(".", allowed_hosts=["*.qlikcloud.com", "localhost"])
    found = sorted(
        (i.file, i.line, i.column, i.message.split(" is ")[0]) for i in caught.value.issues
    )
    assert found == [
        (os.path.join("tenants", "acme.yaml"), 2, 6, "host 127.0.0.1"),
        (os.path.join("tenants", "gamma.yaml"), 2, 6, "host ::1"),
    ]


def test_loading_resolves_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    case = DATA / "references-not-resolved"
    monkeypatch.chdir(case)
    monkeypatch.delenv("ACME_SMTP_PASSWORD", raising=False)
    state = load_config(".")
    assert not (case / "resolved-marker").exists()
    tenant = state.tenants[0]
    assert tenant.email is not None
    assert tenant.email.secret == SecretRef("cmd", "touch resolved-marker")
    assert tenant.auth == OAuthAuth(
        "${env:QLIK_CLIENT_ID}", SecretRef("file", "/nonexistent/secret")
    )


def test_tenant_source_points_at_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA / "valid-minimal")
    assert load_config(".").tenants[0].source == SourcePos(ACME, 1, 1)


# The examples


def _tenant(state: DesiredState, name: str) -> TenantSpec:
    return next(tenant for tenant in state.tenants if tenant.name == name)


def test_basic_auth_example_loads() -> None:
    state = load_config(EXAMPLES / "basic-auth")
    acme = _tenant(state, "acme")
    assert acme.url == "https://acme.eu.qlikcloud.com"
    assert acme.auth == ApiKeyAuth(SecretRef("env", "QLIK_API_KEY"))
    assert acme.email is not None and acme.email.provider is Provider.BASIC_AUTH
    assert acme.email.as_dict() == {
        "serverAddress": "email-smtp.eu-west-2.amazonaws.com",
        "serverPort": 465,
        "securityType": "SSL/TLS",
        "username": "AKIAIOSFODNN7EXAMPLE",
        "emailAddress": "qlik@acme.example",
        "senderName": "Acme Analytics",
    }
    assert acme.email.secret == SecretRef("env", "ACME_SMTP_PASSWORD")


def test_microsoft365_example_loads() -> None:
    state = load_config(EXAMPLES / "microsoft365")
    contoso = _tenant(state, "contoso")
    assert contoso.auth == OAuthAuth(
        "0a1b2c3d4e5f67890a1b2c3d4e5f6789", SecretRef("env", "QLIK_CLIENT_SECRET"), "admin_classic"
    )
    assert contoso.email is not None and contoso.email.provider is Provider.MICROSOFT365
    assert contoso.email.as_dict() == {
        "clientId": "12345678-1234-1234-1234-123456789012",
        "providerTenantId": "87654321-4321-4321-4321-210987654321",
        "emailAddress": "qlik-notifications@contoso.example",
    }
    assert contoso.email.secret == SecretRef("env", "CONTOSO_M365_CLIENT_SECRET")
    assert state.settings.timeout_s == 60.0


def test_oem_fleet_example_merges_defaults_per_provider() -> None:
    state = load_config(EXAMPLES / "oem-fleet")
    assert [t.name for t in state.tenants] == ["acme", "globex", "hooli", "initech", "umbrella"]
    shared_auth = OAuthAuth("${env:QLIK_CLIENT_ID}", SecretRef("env", "QLIK_CLIENT_SECRET"))
    acme, globex, hooli, initech, umbrella = state.tenants
    assert acme.email is not None and acme.email.as_dict() == {
        "serverAddress": "email-smtp.eu-west-2.amazonaws.com",
        "serverPort": 465,
        "securityType": "SSL/TLS",
        "username": "AKIAIOSFODNN7EXAMPLE",
        "emailAddress": "qlik@acme.example",
        "senderName": "Acme Analytics",
    }
    assert acme.email.secret == SecretRef("env", "SES_SMTP_PASSWORD")
    assert globex.email is not None
    assert globex.email.as_dict()["serverPort"] == 587
    assert globex.email.as_dict()["securityType"] == "StartTLS"
    assert globex.email.as_dict()["senderName"] == "Example Analytics"
    assert hooli.auth == ApiKeyAuth(SecretRef("env", "HOOLI_QLIK_API_KEY"))
    assert hooli.email is not None and hooli.email.secret == SecretRef("env", "HOOLI_SMTP_PASSWORD")
    assert initech.email is not None and initech.email.provider is Provider.MICROSOFT365
    assert set(initech.email.as_dict()) == {"clientId", "providerTenantId", "emailAddress"}
    assert umbrella.email is None
    assert {t.auth for t in (acme, globex, initech, umbrella)} == {shared_auth}


def test_oem_fleet_example_settings() -> None:
    settings = load_config(EXAMPLES / "oem-fleet").settings
    assert settings.concurrency == 32
    assert settings.timeout_s == 20.0
    assert settings.deadlines == Deadlines(read_s=40.0, write_s=90.0)
    assert load_config(EXAMPLES / "microsoft365").settings.deadlines == Deadlines(45.0, 120.0)
    assert settings.safety == Safety(50, 25.0, 1, 10.0)
    assert settings.ignore == (
        IgnoreRule(
            "globex",
            "senderName",
            "Globex edits its sender name during its rebrand, ticket OPS-42",
            date(2026, 12, 31),
        ),
    )


def example_config_files() -> list[Path]:
    """The configuration files of the examples (not tool files such as
    .pre-commit-config.yaml, nor workflows, which are .yml)."""
    return sorted(p for p in EXAMPLES.rglob("*.yaml") if not p.name.startswith("."))


def test_every_example_yaml_file_names_its_schema() -> None:
    files = example_config_files()
    assert len(files) >= 9
    for path in files:
        kind = "root" if path.name == ROOT else "tenant"
        modeline = path.read_text().splitlines()[0]
        assert modeline.startswith("# yaml-language-server: $schema=")
        target = modeline.split("=", 1)[1]
        # A path to this repository's schema, or its published URL (its $id), which
        # works wherever the files are copied to.
        if target != load_schema(kind)["$id"]:
            assert (path.parent / target).resolve() == (SCHEMAS / f"{kind}.schema.json").resolve()


# The schemas


@pytest.mark.parametrize("kind", ["root", "tenant"])
def test_schema_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    schema = load_schema(kind)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{kind}.schema.json")


@pytest.mark.parametrize("kind", ["root", "tenant"])
def test_every_schema_property_is_described_and_closed(kind: str) -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, where
            for name, prop in node.get("properties", {}).items():
                assert "description" in prop or "$ref" in prop, f"{where}.{name}"
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(load_schema(kind), kind)


def test_both_schemas_share_identical_definitions() -> None:
    # Each schema is self-contained so editors need no network; this keeps them in step.
    assert load_schema("root")["$defs"] == load_schema("tenant")["$defs"]


def test_package_schemas_are_the_repository_schemas() -> None:
    for kind in ("root", "tenant"):
        assert load_schema(kind) == json.loads((SCHEMAS / f"{kind}.schema.json").read_text())


def test_examples_validate_against_the_schemas() -> None:
    for path in example_config_files():
        doc, issues = read_document(path, str(path))
        assert doc is not None and not issues
        assert schema_issues(doc, "root" if path.name == ROOT else "tenant") == [], path


def test_read_failure_is_reported_at_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same path as chmod 000, for when the tests run as root.
    case = _copy_case("valid-minimal", tmp_path)
    real_open = os.open

    def refuse(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.path.basename(path) == "acme.yaml":
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.chdir(case)
    issues = _issues(".")
    assert [str(issue) for issue in issues] == [
        f"{ACME}:1:1: cannot read the file: Permission denied"
    ]


def test_literal_secret_message_suggests_a_reference_named_after_the_tenant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(DATA / "literal-password")
    assert str(_issues(".")[0]) == (
        "tenants/acme.yaml:5:13: email.password must be a secret reference such as "
        "${env:ACME_SMTP_PASSWORD}, not a literal value"
    )


def test_broken_defaults_are_reported_once_not_in_every_tenant(tmp_path: Path) -> None:
    case = _copy_case("valid-minimal", tmp_path)
    root = (case / ROOT).read_text().replace("serverAddress:", "serverAdress:")
    (case / ROOT).write_text(root)
    tenant = (case / ACME).read_text() + "auth:\n  apiKey: ${env:ACME_API_KEY}\n"
    (case / ACME).write_text(tenant)
    (case / "tenants" / "beta.yaml").write_text(
        tenant.replace("acme", "beta").replace("  password: ${env:ACME_SMTP_PASSWORD}\n", "")
    )
    issues = _issues(case)
    assert [issue.message for issue in issues] == [
        "unknown key 'serverAdress' in defaults.email (did you mean 'serverAddress'?)"
    ]


def test_unparsable_root_still_checks_each_tenant_file(tmp_path: Path) -> None:
    case = _copy_case("literal-password", tmp_path)
    (case / ROOT).write_text("defaults: [\n")
    files = [issue.file for issue in _issues(case)]
    assert [os.path.basename(file) for file in files] == [ROOT, "acme.yaml"]


# Single-value checks


@pytest.mark.parametrize(
    ("word", "meant"),
    [
        ("starttls", "StartTLS"),
        ("STARTTLS", "StartTLS"),
        ("ssl/tls", "SSL/TLS"),
        ("SSL", "SSL/TLS"),
        ("TLS", "SSL/TLS"),
        ("None", "none"),
        ("StartTSL", "StartTLS"),
    ],
)
def test_security_type_slips_get_a_suggestion(word: str, meant: str) -> None:
    assert suggest(word, SECURITY_TYPES) == meant


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("https://acme.eu.qlikcloud.com:0", "port"),
        ("https://acme.eu.qlikcloud.com:99999", "port"),
        ("https://acme.eu.qlikcloud.com:https", "port"),
        ("ftp://acme.eu.qlikcloud.com", "not ftp://"),
        ("https://acme.eu.qlikcloud.com/#top", "fragment"),
        ("https://", "no host"),
        ("https://acme..com", "not a valid host name"),
        ("https://acme eu.qlikcloud.com", "spaces"),
        ("http://10.0.0.5", "loopback"),
        ("http://localhost.evil.example", "loopback"),
        ("//acme.eu.qlikcloud.com", "did you mean https://acme.eu.qlikcloud.com?"),
    ],
)
def test_unusable_urls_are_explained(url: str, phrase: str) -> None:
    problem = url_problem(url)
    assert problem is not None and phrase in problem


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.eu.qlikcloud.com",
        "https://acme.eu.qlikcloud.com/",
        "HTTPS://Acme.EU.qlikcloud.com:443/qlik",
        "https://10.1.2.3:8443",
        "http://127.0.0.2:8080",
        "http://LOCALHOST",
        "http://[::1]:9000/",
    ],
)
def test_usable_urls_pass(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("qlik@acme.example", True),
        ("first.last+tag@mail.acme.co.uk", True),
        ("qlik@xn--bcher-kva.example", True),
        ("qlik@acme", False),
        ("qlik.acme.example", False),
        ("qlik@@acme.example", False),
        ("qlik@acme..example", False),
        (".qlik@acme.example", False),
        ("qlik @acme.example", False),
    ],
)
def test_email_addresses_are_checked(address: str, valid: bool) -> None:
    assert (email_problem("emailAddress", address) is None) is valid


def test_email_absent_or_mapping_is_explained_for_other_types(tmp_path: Path) -> None:
    case = _copy_case("email-maybe", tmp_path)
    (case / ACME).write_text((case / ACME).read_text().replace("email: maybe", "email: 42"))
    assert "or the string 'absent'" in _issues(case)[0].message


def test_loading_file_by_file_gives_each_clean_tenant_and_the_same_error_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(DATA / "many-broken-files")
    load = ConfigLoad(".")
    assert not load.ok  # the root file's issue is known before any tenant file
    assert [Path(f).name for f in load.files] == ["acme.yaml", "beta.yaml", "gamma.yaml"]
    assert list(load) == [None, None, None]  # every tenant file has an issue of its own
    with pytest.raises(ConfigError) as caught:
        load.finish()
    assert caught.value.issues == _issues(".")
    with pytest.raises(ConfigError) as again:  # finishing twice reports each issue once
        load.finish()
    assert again.value.issues == caught.value.issues


def test_the_checks_across_files_come_when_the_load_finishes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(DATA / "duplicate-tenant-name")
    load = ConfigLoad(".")
    tenants = list(load)
    assert [t.name if t else None for t in tenants] == ["acme", "acme"] and load.ok
    with pytest.raises(ConfigError, match="acme") as caught:
        load.finish()
    assert caught.value.issues == _issues(".") and not load.ok
