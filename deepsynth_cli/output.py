"""How commands print: stdout carries only the command's result (text or one JSON document).

While a command runs, ``sys.stdout`` points at stderr, so whatever libraries print (ZenML,
step code, progress) never mixes with the result; :func:`echo`, :func:`echo_json` and
:func:`emit` write the result to the real stdout. Every command is a :class:`Command`, which
does that and takes ``-v``/``--debug`` after the command name too.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import click

from deepsynth.errors import DeepSynthError

#: Quarantined documents listed in the text output; --json lists all.
QUARANTINE_SHOWN = 20


class _Session:
    """This invocation's output state (one command per process; :func:`reset` starts afresh)."""

    stream: TextIO | None = None  # the real stdout while a command runs
    as_json = False
    printed = False
    verbosity = 0
    debug = False
    progress = False


def reset() -> None:
    """Forget the previous invocation's output state."""
    _Session.stream, _Session.as_json, _Session.printed = None, False, False
    _Session.verbosity, _Session.debug, _Session.progress = 0, False, False


def debug_requested() -> bool:
    """True when ``--debug`` was given (tracebacks are shown)."""
    return _Session.debug


def json_requested() -> bool:
    """True when the command was given ``--json``."""
    return _Session.as_json


def document_printed() -> bool:
    """True once a result was printed on stdout."""
    return _Session.printed


def _remember_json(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    _Session.as_json = _Session.as_json or bool(value)
    return value


#: ``--json`` for any command: its result as one JSON document on stdout (errors too).
json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_remember_json,
    help="Print the result as one JSON document on stdout (everything else goes to stderr).",
)


def _remember_verbosity(_ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if param.name == "verbose":
        _Session.verbosity = max(_Session.verbosity, value or 0)
    elif param.name == "progress":
        _Session.progress = _Session.progress or bool(value)
    else:
        _Session.debug = _Session.debug or bool(value)
    return value


def verbosity_options(func: Callable) -> Callable:
    """``-v``/``--verbose`` (repeatable), ``--debug`` and ``--progress``, on the group and on every command."""
    func = click.option(
        "--progress",
        is_flag=True,
        expose_value=False,
        callback=_remember_verbosity,
        is_eager=True,
        help="Draw progress bars even when stderr is not a terminal (default: on a terminal only).",
    )(func)
    func = click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_remember_verbosity,
        is_eager=True,
        help="Show more on stderr: -v third-party warnings and messages, -vv progress messages too.",
    )(func)
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        callback=_remember_verbosity,
        is_eager=True,
        help="Log everything and show tracebacks on errors.",
    )(func)


@contextlib.contextmanager
def result_stdout() -> Iterator[None]:
    """Send ``sys.stdout`` to stderr for the duration; :func:`echo` still writes to the real stdout."""
    _Session.stream = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _Session.stream = None


class Command(click.Command):
    """A command whose stdout carries only its result, with diagnostics set up before it runs."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        verbosity_options(self)

    def invoke(self, ctx: click.Context) -> Any:
        """Configure logging (now that -v/--debug are known) and run the command with stdout kept clean."""
        from deepsynth_cli.logs import configure

        configure(_Session.verbosity, _Session.debug, progress=_Session.progress)
        if _Session.verbosity or _Session.debug:
            from deepsynth.paths import find_home

            click.echo(find_home().describe(), err=True)  # -v: which home, and why
        with result_stdout():
            return super().invoke(ctx)


class Group(click.Group):
    """A command group whose commands are :class:`Command` and whose subgroups are :class:`Group`.

    ``lazy_commands`` maps a command name to ``"module:attribute"``: the module is imported when the
    command is looked up (it runs, or ``--help`` lists it), so a command imports only its own module
    (click's lazily loaded subcommands pattern).
    """

    command_class = Command
    group_class = type  # subgroups are this same class

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Loaded and lazy command names, sorted."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, its module imported first if it is a lazy one."""
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module, _, attribute = self.lazy_commands[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


def echo(text: str = "") -> None:
    """Print a line of the command's result on the real stdout."""
    click.echo(text, file=_Session.stream or sys.stdout)
    _Session.printed = True


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON (non-JSON values as their ``str``) on the real stdout."""
    echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def emit(summary: dict[str, Any], as_json: bool) -> None:
    """Print a summary: JSON with ``as_json``, else one ``key: value`` line per entry."""
    if as_json:
        echo_json(summary)
        return
    for key, value in summary.items():
        if key == "quarantine":
            echo(f"quarantine: {len(value)} document(s)")
            for item in value[:QUARANTINE_SHOWN]:
                echo(f"  - {item.get('id')}: {item.get('reason')}")
            if len(value) > QUARANTINE_SHOWN:
                echo(f"  … {len(value) - QUARANTINE_SHOWN} more (use --json for all)")
        elif key == "browse":
            echo("browse runs, reports and models:")
            for command in value.values():
                echo(f"  {command}")
        elif key == "reports":
            for name, where in value.items():
                echo(f"{name} report: " + "  ".join(where.values()))
        elif isinstance(value, (dict, list)):
            echo(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}")
        else:
            echo(f"{key}: {value}")


def with_log_file(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` plus ``log_file``: where this invocation's full diagnostics are."""
    from deepsynth_cli.logs import current_log_file

    log = current_log_file()
    return {**summary, "log_file": str(log)} if log else summary


def run_and_emit(action: Callable[[], dict[str, Any]], as_json: bool) -> None:
    """Run ``action`` (a pipeline run returning its summary) and print the summary.

    A :class:`DeepSynthError` that carries a ``summary`` (what the run produced before it
    failed) prints that summary (in JSON with the error and exit code) before it propagates to
    the exit-code mapping, which prints the error on stderr.
    """
    from deepsynth_cli.logs import import_zenml

    import_zenml()
    try:
        summary = action()
    except DeepSynthError as exc:
        if exc.summary:
            failure = {"error": str(exc), "exit_code": exc.exit_code} if as_json else {}
            emit(with_log_file({**exc.summary, **failure}), as_json)
        raise
    emit(with_log_file(summary), as_json)
