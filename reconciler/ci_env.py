"""QLIK_EMAIL_ENV for the workflow steps: NAME=value lines (a secret of the
repository or environment) turned into variables of the step that runs
qlik-email, each value masked in the job log first.

A line may not set a variable the step itself uses (BASE, CONFIG, OUT, ...), nor
one that changes how the shell, Python, git, TLS or the network behave: a
secret's text must not be able to turn `--base` off, load code, reroute
requests or trust another certificate. Such a line, or one that is not
NAME=value, is an error naming its line number, never its text.

The step runs it with the tool's interpreter, isolated from the working
directory (the configuration checkout), and evaluates what it prints:

    exports=$(python -I -m reconciler.ci_env) || exit 1
    eval "$exports"
    unset QLIK_EMAIL_ENV

stdout is `export NAME='value'` lines, quoted for the shell; the masks
(`::add-mask::`, only under GitHub Actions) and errors go to stderr, where the
runner reads workflow commands too.

With STATE=git and STATE_TOKEN (the job's token) set by the step, it also gives
the step's git the credentials to fetch and push the record of applied secrets
(`--state git`): an HTTP header for SERVER_URL, as actions/checkout would set
it, in GIT_CONFIG_* variables of this step only (the checkout keeps none).
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence

from reconciler.report.github import add_mask_commands, escape_data, in_github_actions

VARIABLE = "QLIK_EMAIL_ENV"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The variables the workflow steps and the GitLab jobs set or read themselves.
STEP_NAMES = frozenset(
    {
        "ALLOW_DELETE",
        "ALLOWED_HOSTS",
        "BASE",
        "BASE_INPUT",
        "COMMAND",
        "CONFIG",
        "FORCE",
        "GH_TOKEN",
        "GITLAB_TOKEN",
        "LABEL",
        "OUT",
        "PACKAGE",
        "PLAN",
        "PR",
        "PR_BASE_SHA",
        "HEAD_SHA",
        "RUN_URL",
        "SHARD",
        "STATE",
        "STATE_REF",
        "STATE_REMOTE",
        "STATE_TOKEN",
        "SERVER_URL",
        "STATUS",
        "TEST_EMAIL",
        "TENANTS",
        "VERIFY",
        "ROTATE",
        "FAIL_ON_DRIFT",
        "QLIK_EMAIL_ENV",
        "QLIK_EMAIL_ALLOWED_HOSTS",
        "QLIK_EMAIL_TODAY",
    }
)
# The shell, the dynamic loader, interpreters, the user's files, TLS.
_EXACT = frozenset(
    {
        "PATH",
        "HOME",
        "ENV",
        "SHELL",
        "SHELLOPTS",
        "BASHOPTS",
        "IFS",
        "PS4",
        "CDPATH",
        "GLOBIGNORE",
        "TMPDIR",
        "TEMP",
        "TMP",
        "XDG_CONFIG_HOME",
        "EDITOR",
        "VISUAL",
        "PAGER",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "OPENSSL_CONF",
        "OPENSSL_MODULES",
        "OPENSSL_ENGINES",
        "SSLKEYLOGFILE",
        "HOSTALIASES",  # the resolver: host names mapped elsewhere
        "LOCALDOMAIN",
        "RES_OPTIONS",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
    }
)
_PREFIXES = (
    "GITHUB_",  # the runner's own
    "RUNNER_",
    "ACTIONS_",
    "CI_",  # GitLab's own
    "GITLAB_",
    "BASH_",  # BASH_ENV, exported functions (BASH_FUNC_*)
    "LD_",  # the dynamic loader
    "DYLD_",
    "PYTHON",  # the interpreter: PYTHONPATH, PYTHONSTARTUP, PYTHONHTTPSVERIFY, ...
    "PIP_",
    "VIRTUAL_ENV",
    "PERL",
    "RUBY",
    "NODE_",
    "NPM_CONFIG_",
    "GIT_",  # git: GIT_CONFIG_*, GIT_SSH_COMMAND, GIT_DIR, ...
    "SSH_",
    "SSL_",  # SSL_CERT_FILE, SSL_CERT_DIR
)


class Refused(Exception):
    """A line of QLIK_EMAIL_ENV that cannot be used (its number; never its text)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"{VARIABLE} line {line}: {reason}")
        self.line = line


def refused_name(name: str) -> bool:
    """Whether `name` is one the step uses or one that changes how the shell,
    an interpreter, git, TLS or the network behave."""
    upper = name.upper()
    return (
        name in STEP_NAMES
        or upper in _EXACT
        or upper.startswith(_PREFIXES)
        or upper.endswith("_PROXY")  # HTTPS_PROXY, https_proxy, ALL_PROXY, NO_PROXY
    )


def parse(text: str) -> list[tuple[str, str]]:
    """The (NAME, value) pairs of `text`: one NAME=value a line; blank lines and
    lines starting with # are skipped; a trailing CR is dropped. Refused for
    the first line that is not NAME=value or names a refused variable."""
    pairs: list[tuple[str, str]] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip() or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals or not _NAME.match(name):
            raise Refused(number, "each line must be NAME=value (letters, digits and _)")
        if refused_name(name):
            raise Refused(
                number,
                f"{name} is set by the step itself, or changes how the shell, Python, "
                "git, TLS or the network behave: it cannot come from QLIK_EMAIL_ENV",
            )
        pairs.append((name, value))
    return pairs


def exports(pairs: Sequence[tuple[str, str]]) -> str:
    """`export NAME='value'` lines for the shell to evaluate."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in pairs)


def masks(pairs: Sequence[tuple[str, str]]) -> str:
    """The `::add-mask::` lines hiding every value in a GitHub Actions log."""
    return "".join(f"{command}\n" for _, value in pairs for command in add_mask_commands(value))


def git_credentials(environ: Mapping[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """The GIT_CONFIG_* variables that give git the job's token for SERVER_URL,
    when the step keeps the record in git (STATE=git) and has a STATE_TOKEN; and
    the texts to mask (the header, and its encoded token alone)."""
    token, server = environ.get("STATE_TOKEN", ""), environ.get("SERVER_URL", "")
    if environ.get("STATE") != "git" or not token or not server:
        return [], []
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    header = f"AUTHORIZATION: basic {basic}"
    variables = [
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", f"http.{server.rstrip('/')}/.extraheader"),
        ("GIT_CONFIG_VALUE_0", header),
    ]
    return variables, [header, basic]


def main(environ: Mapping[str, str] = os.environ) -> int:
    """Print the exports of QLIK_EMAIL_ENV (stdout) after its masks (stderr)."""
    github = in_github_actions(environ)
    try:
        pairs = parse(environ.get(VARIABLE, ""))
    except Refused as refused:
        message = escape_data(str(refused))
        sys.stderr.write(f"::error title=qlik-email::{message}\n" if github else f"{message}\n")
        return 1
    credentials, hidden = git_credentials(environ)
    if github:
        sys.stderr.write(masks([*pairs, *(("", text) for text in hidden)]))
        sys.stderr.flush()
    sys.stdout.write(exports([*pairs, *credentials]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
