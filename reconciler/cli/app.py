"""The click group, shared options, and `main`, which maps outcomes to exit codes.

Exit codes: 0 success / no changes; 2 changes present (plan --detailed-exitcode,
drift); 1 error (invalid configuration, unreachable tenant, API error, usage
error); 3 apply ran but not every tenant converged; 130 / 143 interrupted by
SIGINT / SIGTERM.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import platform
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

import click

from reconciler import __version__
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.report import escape
from reconciler.scrub import Scrubber

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_PARTIAL = 3  # apply ran, but not every tenant converged
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


@dataclass
class State:
    """Options shared by every command."""

    debug: bool = False
    color: bool | None = None
    # Every secret of the run (the resolver's values, keys, tokens): whatever
    # this process writes passes it (`out`, `err`, the log, report files).
    scrubber: Scrubber = field(default_factory=Scrubber)

    def use_color(self, stream: TextIO) -> bool:
        """--color / --no-color, else what the environment asks (`color_wanted`)."""
        if self.color is not None:
            return self.color
        return color_wanted(stream.isatty(), os.environ)


_FORCING = ("FORCE_COLOR", "CLICOLOR_FORCE")
_NOT_FORCING = ("", "0", "false")


def color_wanted(tty: bool, environ: Mapping[str, str]) -> bool:
    """The common conventions: `NO_COLOR` (no-color.org) turns colours off when it
    is set and not empty, whatever else is set; otherwise a terminal gets
    colours, and so does any other output when `FORCE_COLOR` (force-color.org)
    or `CLICOLOR_FORCE` is set to anything but empty, "0" or "false" (a CI log
    that shows colours, a pager)."""
    if environ.get("NO_COLOR"):
        return False
    if tty:
        return True
    return any(environ.get(name, "").lower() not in _NOT_FORCING for name in _FORCING)


class RedactingFilter(logging.Filter):
    """Scrubs every secret of this run from log records, as a last line of
    defence: no code logs secrets, but a library or a server might echo one."""

    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state

    def filter(self, record: logging.LogRecord) -> bool:
        scrub = self.state.scrubber.scrub_logs
        message = record.getMessage()
        if record.exc_info:
            # Format the traceback now, so that it is scrubbed too.
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = None, None
        record.msg, record.args = _message_lines(scrub(message)), None
        return True


def _message_lines(text: str) -> str:
    """Lines of a message for a terminal or a job log: no control characters
    (`escape.terminal`, line by line) and no workflow command."""
    return escape.workflow_lines("\n".join(escape.terminal(line) for line in text.split("\n")))


# The scrubber of the run in progress (`main` sets it): `out` and `err` are
# called from every command without the State at hand.
_active = Scrubber()


def scrubbed(text: str) -> str:
    """`text` without any secret of the run in progress, in any spelling."""
    return _active.scrub(text)


# The last guard of every output, rendered or JSON: C1 controls and the
# invisible characters (`escape.INVISIBLE`) become JSON's \uXXXX escapes, which
# is what they are inside a JSON string, the only place a JSON document can
# hold them (`style.dumps` escapes them already). Renderers of text and Markdown
# escape them already too, but for the zero-width space that `escape.markdown`
# puts after an `@` so that a mention cannot ping: it stays. (C0 controls are
# escaped by every renderer and by JSON; ESC stays for the colours of `--color`.)
_MENTION_GUARD = "\u200b"


def visible(text: str) -> str:
    """`text` with C1 controls and invisible characters written as `\\uXXXX`."""
    return escape.json_text(text, keep=_MENTION_GUARD)


def out(text: str, *, color: bool = False) -> None:
    """Write a rendered report to stdout. It holds no secret of the run
    (`scrubbed`), and no line of it can be a workflow command
    (`escape.workflow_lines`): reports hold text from pull requests and servers.
    `color`: the text holds colours that must be kept even off a terminal
    (`--color`), where click would otherwise strip them."""
    text = escape.workflow_lines(visible(scrubbed(text)))
    click.echo(text, nl=False, color=True if color else None)


def err(text: str) -> None:
    """Write a message line to stderr, guarded as `out` is; messages may quote a
    server, so control characters are shown as escapes too (`escape.terminal`)."""
    click.echo(_message_lines(scrubbed(text)), err=True)


def workflow_command(line: str) -> None:
    """Write one of our own GitHub Actions workflow commands (a mask, an
    annotation) to stderr, where the runner reads them as it does stdout."""
    click.echo(line, err=True)


def _setup_logging(state: State) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter(state))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("reconciler")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if state.debug else logging.WARNING)
    root.propagate = False


# name -> (module:attribute, one-line help). Commands are imported only when run,
# so `qlik-email --help` does not pay for httpx, jsonschema or the sandbox.
COMMANDS = {
    "validate": (
        "reconciler.cli.validate:validate",
        "Check the configuration files; contact no tenant.",
    ),
    "plan": ("reconciler.cli.plan:plan", "Show what apply would change."),
    "fmt": ("reconciler.cli.fmt:fmt", "Rewrite the configuration files in one canonical layout."),
    "show": ("reconciler.cli.show:show", "Show a plan, an apply or drift report, or the state."),
    "apply": ("reconciler.cli.apply:apply", "Converge tenants, verify, and report."),
    "drift": ("reconciler.cli.drift:drift", "Report tenants whose live config or health drifted."),
    "import": (
        "reconciler.cli.importing:import_command",
        "Write configuration files from the live tenants.",
    ),
    "report": (
        "reconciler.cli.report:report",
        "Merge the JSON reports of shards (report merge FILE...).",
    ),
    "sandbox": ("reconciler.sandbox.cli:sandbox_command", "Run a local fleet of test tenants."),
    "demo": ("reconciler.cli.demo:demo", "plan -> apply -> plan against a local sandbox."),
}


# Commands that run the sandbox, whose packages (aiohttp, aiosmtpd, aiosmtplib,
# cryptography) come with the `sandbox` extra only.
NEEDS_SANDBOX_EXTRA = frozenset({"sandbox", "demo"})
INSTALL_HINT = "pip install 'qlik-email[sandbox]'"


def _needs_extra(name: str, missing: str) -> click.Command:
    """A stand-in for command `name` when the sandbox extra is not installed."""

    def refuse(**_: object) -> int:
        raise ReconcilerError(
            f"qlik-email {name} needs the sandbox extra ({missing} is not installed): "
            f"{INSTALL_HINT}"
        )

    return click.Command(
        name,
        callback=refuse,
        help=f"Needs the sandbox extra: {INSTALL_HINT}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = COMMANDS[cmd_name][0].split(":")
        try:
            command = getattr(importlib.import_module(module_name), attribute)
        except ModuleNotFoundError as exc:
            if cmd_name not in NEEDS_SANDBOX_EXTRA:
                raise
            return _needs_extra(cmd_name, exc.name or "a module")
        assert isinstance(command, click.Command)
        command.name = cmd_name
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__,
    "--version",
    prog_name="qlik-email",
    message=f"%(prog)s %(version)s (Python {platform.python_version()})",
)
@click.option(
    "--debug", is_flag=True, help="Log every request (secrets redacted) and show tracebacks."
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Force colours on or off (default: on for a TTY, or when FORCE_COLOR or "
    "CLICOLOR_FORCE is set; off when NO_COLOR is set and not empty).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, color: bool | None) -> None:
    """Manage the e-mail configuration of Qlik Cloud tenants as code."""
    state = ctx.ensure_object(State)
    state.debug, state.color = debug, color
    _setup_logging(state)


def _annotate(exc: ConfigError) -> None:
    """In GitHub Actions, also print each issue as an annotation on its file."""
    from reconciler.report.github import error_annotations, in_github_actions

    if in_github_actions(os.environ):
        for line in error_annotations(exc.issues).splitlines():
            workflow_command(scrubbed(line))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and map every outcome to an exit code."""
    global _active
    state = State()
    previous, _active = _active, state.scrubber
    try:
        return _main(argv, state)
    finally:
        _active = previous


def _main(argv: Sequence[str] | None, state: State) -> int:
    try:
        result: Any = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="qlik-email",
            standalone_mode=False,
            obj=state,
        )
    except click.exceptions.Abort:
        err("Aborted.")
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR
    except (ConfigError, ReconcilerError) as exc:
        if isinstance(exc, ConfigError):
            _annotate(exc)
        err(f"Error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err("Interrupted.")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so, and show the traceback only when asked
        if state.debug:
            err(_active.scrub_logs(traceback.format_exc()))
        err(f"Internal error ({type(exc).__name__}): a bug. Re-run with --debug for details.")
        return EXIT_ERROR
    return result if isinstance(result, int) else EXIT_OK


# Young-generation collections every 10,000 net allocations instead of 700: a
# run keeps every tenant's configuration and result, and with Python's default
# the collector re-walked that growing heap in full six times over 10,000
# tenants (bench/NOTES.md, "Garbage collector").
GC_YOUNG_THRESHOLD = 10_000


def run() -> NoReturn:
    """The `qlik-email` console script (and `python -m reconciler`)."""
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    code = main()
    # The interpreter's exit would walk every object in full collections once
    # more, for nothing (measured in bench/NOTES.md). Frozen
    # objects are left out of them; exit handlers and flushing still run.
    gc.freeze()
    sys.exit(code)
