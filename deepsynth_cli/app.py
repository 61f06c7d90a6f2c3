"""The ``deepsynth`` group, its command groups, and the mapping of errors to exit codes.

Exit codes: 0 ok; 2 bad usage or config; 3 data validation failed; 4 quality gate; 1 any other failure.
"""

from __future__ import annotations

import sys

import click

from deepsynth.errors import DeepSynthError
from deepsynth_cli.models import models
from deepsynth_cli.render import render
from deepsynth_cli.runs import data, register, run
from deepsynth_cli.schedule import schedule
from deepsynth_cli.stack import stack
from deepsynth_cli.summarize import summarize


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deepsynth-pipelines")
def cli() -> None:
    """DeepSynth: turn documents into a fine-tuned DeepSeek-OCR summarizer.

    Exit codes: 0 ok, 2 bad usage or config, 3 data validation failed, 1 other failure.
    """


for _command in (run, data, render, register, models, summarize, stack, schedule):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes."""
    try:
        cli.main(args=argv, prog_name="deepsynth", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except DeepSynthError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, exit 1
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        return 1
    return 0


def entry_point() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())
