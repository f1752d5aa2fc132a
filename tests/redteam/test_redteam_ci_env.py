"""QLIK_EMAIL_ENV as an attacker who controls its text would write it: the step's
own lines (taken from the workflows and the action, run with bash as the runner
does) must refuse every name the step uses and every variable that changes how
the shell, Python, git, TLS or the network behave, name the line and never its
text, export nothing then, and export any other value verbatim (never run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-value-that-must-never-print"
END = "unset QLIK_EMAIL_ENV STATE_TOKEN\n"


def _env_lines(script: str) -> str:
    """The lines of a step that turn QLIK_EMAIL_ENV into the step's variables."""
    start = script.index("# QLIK_EMAIL_ENV holds")
    return script[start : script.index(END) + len(END)]


def _steps() -> dict[str, str]:
    found = {}
    for path in [*sorted((ROOT / ".github" / "workflows").glob("*.yml")), ROOT / "action.yml"]:
        document = yaml.safe_load(path.read_text())
        jobs = document.get("jobs") or {"action": {"steps": document["runs"]["steps"]}}
        for job_name, job in jobs.items():
            for step in job.get("steps", []):
                if "QLIK_EMAIL_ENV" in str(step.get("run", "")):
                    found[f"{path.name}:{job_name}:{step['name']}"] = _env_lines(step["run"])
    return found


STEPS = _steps()


def test_one_implementation_everywhere():
    assert len(STEPS) == 7  # plan, apply (its plan and apply jobs), drift; the action: 3
    assert len({re.sub(r"(?m)^\s+", "", text) for text in STEPS.values()}) == 1
    assert "python -I -m reconciler.ci_env" in next(iter(STEPS.values()))


def run_step(
    tmp_path: Path, dotenv: str, *, github: bool = True, extra: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """The step's lines, then a dump of the step's environment, in `tmp_path` (the
    configuration checkout, as the working directory)."""
    script = tmp_path / "step.sh"
    dump = tmp_path / "env.out"
    script.write_text(next(iter(STEPS.values())) + f'env -0 > "{dump}"\n')
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path),
        "QLIK_EMAIL_ENV": dotenv,
        "CONFIG": "config",
        "BASE": "0123abcd" * 5,
        **({"GITHUB_ACTIONS": "true"} if github else {}),
        **(extra or {}),
    }
    dump.unlink(missing_ok=True)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    exported = {}
    if dump.exists():
        for item in dump.read_text().split("\0"):
            if "=" in item:
                name, value = item.split("=", 1)
                exported[name] = value
    return done, exported


REFUSED = [
    "BASE",
    "CONFIG",
    "OUT",
    "SHARD",
    "PLAN",
    "STATE",
    "STATE_REF",
    "ALLOWED_HOSTS",
    "QLIK_EMAIL_ALLOWED_HOSTS",
    "QLIK_EMAIL_ENV",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHTTPSVERIFY",
    "PIP_INDEX_URL",
    "VIRTUAL_ENV",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_KEY_0",
    "GIT_SSH_COMMAND",
    "GIT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSLKEYLOGFILE",
    "HOSTALIASES",
    "RES_OPTIONS",
    "OPENSSL_CONF",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "NODE_OPTIONS",
    "PERL5OPT",
    "RUBYOPT",
    "PATH",
    "HOME",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "IFS",
    "XDG_CONFIG_HOME",
    "GITHUB_ENV",
    "GITHUB_PATH",
    "RUNNER_TEMP",
    "ACTIONS_RUNTIME_TOKEN",
    "CI_JOB_TOKEN",
    "GITLAB_TOKEN",
]


@pytest.mark.parametrize("name", REFUSED)
def test_a_name_the_step_or_its_tools_use_is_refused(name, tmp_path):
    dotenv = f"# the API credentials\nQLIK_CLIENT_ID=abc\n\n{name}={SECRET}\n"
    done, exported = run_step(tmp_path, dotenv)
    assert done.returncode == 1
    assert done.stderr.startswith("::error title=qlik-email::QLIK_EMAIL_ENV line 4: ")
    assert SECRET not in done.stdout + done.stderr
    assert exported == {}  # the step stopped: nothing was exported, nothing ran on


@pytest.mark.parametrize(
    "line",
    [SECRET, f"={SECRET}", f"1A={SECRET}", f"A-B={SECRET}", f"export A={SECRET}", f" A={SECRET}"],
)
def test_a_line_that_is_not_name_value_is_refused_without_its_text(line, tmp_path):
    done, exported = run_step(tmp_path, f"A=1\r\n{line}\n")
    assert done.returncode == 1
    assert "QLIK_EMAIL_ENV line 2: each line must be NAME=value" in done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert exported == {}


def test_values_are_masked_first_and_exported_verbatim_never_run(tmp_path):
    marker = tmp_path / "ran"
    hostile = [
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"'; touch {marker}; '",
        f'"; touch {marker}; "',
        "100% = %0A::error::forged",
        "",
    ]
    dotenv = "".join(f"V{i}={value}\r\n" for i, value in enumerate(hostile))
    done, exported = run_step(tmp_path, dotenv)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    for i, value in enumerate(hostile):
        assert exported[f"V{i}"] == value
    masks = done.stderr.splitlines()
    assert masks[0] == f"::add-mask::$(touch {marker})"
    assert "::add-mask::100%25 = %250A::error::forged" in masks
    assert "QLIK_EMAIL_ENV" not in exported and exported["BASE"] == "0123abcd" * 5
    assert done.stdout == ""


def test_outside_github_actions_nothing_is_printed(tmp_path):
    """GitLab masks its own variables: a `::add-mask::` line would print the value."""
    done, exported = run_step(tmp_path, f"SMTP_PASSWORD={SECRET}\n", github=False)
    assert done.returncode == 0 and done.stdout + done.stderr == ""
    assert exported["SMTP_PASSWORD"] == SECRET
    refused = run_step(tmp_path, f"BASE={SECRET}\n", github=False)[0]
    assert refused.stderr.startswith("QLIK_EMAIL_ENV line 1: BASE is set by the step")


def test_the_working_directory_cannot_stand_in_for_the_module(tmp_path):
    """The step runs in the configuration checkout: a `reconciler` package there (or
    a PYTHONPATH the runner was given) is not what runs."""
    marker = tmp_path / "imported"
    package = tmp_path / "reconciler"
    package.mkdir()
    (package / "__init__.py").write_text(f"open({str(marker)!r}, 'w')\n")
    (package / "ci_env.py").write_text(f"open({str(marker)!r}, 'w')\n")
    done, exported = run_step(
        tmp_path, "A=1\n", extra={"PYTHONPATH": str(tmp_path), "PYTHONSTARTUP": str(package)}
    )
    assert done.returncode == 0, done.stderr
    assert exported["A"] == "1" and not marker.exists()


def test_the_job_token_reaches_git_only_in_a_masked_header(tmp_path):
    token = "ghs_" + "x" * 36
    extra = {"STATE": "git", "STATE_TOKEN": token, "SERVER_URL": "https://github.example/"}
    done, exported = run_step(tmp_path, "A=1\n", extra=extra)
    assert done.returncode == 0, done.stderr
    assert "STATE_TOKEN" not in exported and token not in "".join(exported.values())
    assert exported["GIT_CONFIG_COUNT"] == "1"
    assert exported["GIT_CONFIG_KEY_0"] == "http.https://github.example/.extraheader"
    header = exported["GIT_CONFIG_VALUE_0"]
    assert header.startswith("AUTHORIZATION: basic ")
    assert f"::add-mask::{header}" in done.stderr.splitlines()
    assert f"::add-mask::{header.split()[-1]}" in done.stderr.splitlines()
    assert "::add-mask::1\n" in done.stderr  # A's value, not the count
    assert done.stderr.count("::add-mask::") == 3
