"""How commands print: a run summary as text or JSON, and running a pipeline with stdout kept clean."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Callable

import click

from deepsynth.errors import DeepSynthError

#: Quarantined documents listed in the text output; --json lists all.
QUARANTINE_SHOWN = 20


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON (non-JSON values as their ``str``)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def emit(summary: dict[str, Any], as_json: bool) -> None:
    """Print a summary: JSON with ``as_json``, else one ``key: value`` line per entry."""
    if as_json:
        echo_json(summary)
        return
    for key, value in summary.items():
        if key == "quarantine":
            click.echo(f"quarantine: {len(value)} document(s)")
            for item in value[:QUARANTINE_SHOWN]:
                click.echo(f"  - {item.get('id')}: {item.get('reason')}")
            if len(value) > QUARANTINE_SHOWN:
                click.echo(f"  … {len(value) - QUARANTINE_SHOWN} more (use --json for all)")
        elif key == "browse":
            click.echo("browse the registered versions:")
            for command in value.values():
                click.echo(f"  {command}")
        elif isinstance(value, (dict, list)):
            click.echo(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}")
        else:
            click.echo(f"{key}: {value}")


def run_and_emit(action: Callable[[], dict[str, Any]], as_json: bool) -> None:
    """Run ``action`` (a pipeline run returning its summary) and print the summary.

    ZenML logs to stdout; with ``as_json`` that goes to stderr so stdout carries only the JSON
    document. A :class:`DeepSynthError` that carries a ``summary`` (what the run produced before
    it failed) prints that summary before it propagates to the exit-code mapping.
    """
    try:
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            summary = action()
    except DeepSynthError as exc:
        if getattr(exc, "summary", None):
            emit(exc.summary, as_json)
        raise
    emit(summary, as_json)
