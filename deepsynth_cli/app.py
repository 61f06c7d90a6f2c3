"""The ``deepsynth`` group, its command groups, and the mapping of errors to exit codes.

Exit codes are defined on the error classes (:func:`deepsynth.errors.exit_codes`: 0 ok; 1 any
other failure; 2 bad usage or config; 3 data validation failed; 4 quality gate; 130 Ctrl-C; 143
stopped by SIGTERM, rerun to resume). A failure prints one error block on
stderr (``--debug`` adds the traceback; the log file always has it) and, with ``--json``, a
JSON document with ``error`` and ``exit_code`` on stdout.
"""

from __future__ import annotations

import sys
import traceback

import click

from deepsynth.errors import ConfigError, DeepSynthError, Interrupted, exit_codes
from deepsynth_cli import output

#: Exit code → meaning, as ``--help`` lists them (from the error classes).
EXIT_CODES = exit_codes()
#: Every command, by the module that defines it: a command imports its own module only (see output.Group).
COMMANDS = {
    "adapters": "deepsynth_cli.adapters:adapters",
    "config": "deepsynth_cli.config_cmd:config",
    "data": "deepsynth_cli.runs:data",
    "models": "deepsynth_cli.models:models",
    "register": "deepsynth_cli.runs:register",
    "render": "deepsynth_cli.render:render",
    "run": "deepsynth_cli.runs:run",
    "runs": "deepsynth_cli.browse:runs",
    "schedule": "deepsynth_cli.schedule:schedule",
    "serve": "deepsynth_cli.serve:serve",
    "stack": "deepsynth_cli.stack:stack",
    "studio": "deepsynth_cli.studio:studio",
    "summarize": "deepsynth_cli.summarize:summarize",
    "ui": "deepsynth_cli.ui:ui",
}


@click.group(
    cls=output.Group,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="\b\nExit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items()),
)
@output.verbosity_options
@click.version_option(package_name="deepsynth-pipelines")
def cli() -> None:
    """DeepSynth: turn documents into a fine-tuned DeepSeek-OCR summarizer.

    Results go to stdout (one JSON document with --json); diagnostics go to stderr and to a
    log file under <home>/logs; the home is $DEEPSYNTH_HOME, else the nearest .deepsynth/ up
    the tree, else ~/.local/share/deepsynth (-v says which).
    """


def report_failure(message: str, exit_code: int, exc: BaseException) -> int:
    """Print one error block on stderr (and the JSON error document with --json); return ``exit_code``."""
    from deepsynth_cli.logs import current_log_file, log_to_file

    log_to_file(f"exit {exit_code}: {message}", exc)
    if output.debug_requested():
        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"error: {message}", err=True)
    log = current_log_file()
    if log is not None and exit_code not in (0, 2):
        click.echo(f"  full log: {log}", err=True)
    if output.json_requested() and not output.document_printed():
        output.echo_json({"error": message, "exit_code": exit_code})
    return exit_code


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes."""
    output.reset()
    try:
        result = cli.main(args=argv, prog_name="deepsynth", standalone_mode=False)
        if isinstance(result, int) and not isinstance(result, bool):
            return result  # click returns (not raises) an Exit's code without standalone mode
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        if output.json_requested():
            output.echo_json({"error": exc.format_message(), "exit_code": ConfigError.exit_code})
        return ConfigError.exit_code
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            return report_failure("interrupted", Interrupted.exit_code, exc.__cause__)
        click.echo("aborted", err=True)
        return 1
    except DeepSynthError as exc:
        return report_failure(str(exc), exc.exit_code, exc)
    except KeyboardInterrupt as exc:
        return report_failure("interrupted", Interrupted.exit_code, exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, exit 1
        return report_failure(f"{type(exc).__name__}: {exc}", 1, exc)
    return 0


def entry_point() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    from deepsynth.process_exit import skip_final_collection
    from pipelines.zenml_speedups import one_shot_process

    one_shot_process()
    skip_final_collection()
    sys.exit(main())
