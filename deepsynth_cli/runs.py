"""Commands that run a pipeline: ``deepsynth run``, ``deepsynth data`` and ``deepsynth register``.

ZenML and MLflow are imported inside the commands only, so ``deepsynth --help`` stays instant.
The run configuration is loaded and checked (:func:`pipelines.config_loading.load_run_config`)
before ZenML is imported: a bad key, file, column, mode or split fails in about a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from deepsynth_cli.output import Command, json_option, run_and_emit

MODES = ("tiny", "small", "base", "large", "gundam")


def config_options(
    required: bool = False,
    default: str | None = None,
    help: str = "Run configuration YAML (see configs/); options and --set override its values.",
) -> Callable:
    """``--config`` and ``--set`` (repeatable), the same on every command that reads a run config."""

    def decorate(func: Callable) -> Callable:
        func = click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override a config value, e.g. --set render.modes=[tiny] (parsed as YAML). Repeatable.",
        )(func)
        return click.option(
            "--config",
            "config_path",
            required=required,
            default=default,
            show_default=default is not None,
            type=click.Path(dir_okay=False),
            help=help,
        )(func)

    return decorate


def file_source_options(func: Callable) -> Callable:
    """``--mode``, ``--text-column`` and ``--summary-column`` for commands that read a local file."""
    func = click.option(
        "--summary-column", default=None, help="Column holding the reference summary [default: summary]."
    )(func)
    func = click.option("--text-column", default=None, help="Column holding the document text [default: text].")(func)
    return click.option(
        "--mode", type=click.Choice(MODES), default=None, help="DeepSeek-OCR resolution mode [default: base]."
    )(func)


def file_source_config(
    input_path: str,
    config_path: str | None,
    overrides: tuple[str, ...],
    mode: str | None,
    text_column: str | None,
    summary_column: str | None,
    command: str,
    extra: dict[str, tuple[str, Any]] | None = None,
    check: bool = True,
) -> tuple[Any, Any]:
    """The run configuration (and its :class:`~pipelines.config_loading.ConfigSource`) of a command reading INPUT.

    Values come from the config file, then ``--set``, then the command's options (``extra``: more
    of them, dotted key → (option, value)). Without ``--config``, the mode defaults to ``base``.
    """
    from pipelines.config_loading import load_with_source

    options: dict[str, tuple[str, Any]] = {
        "pipeline": (f"deepsynth {command}", "data"),
        "ingest.source": ("INPUT", "file"),
        "ingest.path": ("INPUT", input_path),
        "render.modes": ("--mode", [mode] if mode else (None if config_path else ["base"])),
        "ingest.text_column": ("--text-column", text_column),
        "ingest.summary_column": ("--summary-column", summary_column),
        **(extra or {}),
    }
    return load_with_source(config_path, list(overrides), options, check)


@click.command(cls=Command)
@config_options(required=True)
@json_option
def run(config_path: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Run the pipeline that a config YAML describes (the config is checked before anything runs)."""
    from pipelines.zenml_speedups import collection_paused

    with collection_paused():  # mostly imports (the config's classes, pandas, Pillow)
        from pipelines.config_loading import load_run_config

        config = load_run_config(config_path, list(overrides))
    from pipelines.local_stack import prepare_run_environment
    from pipelines.run import run_pipeline

    prepare_run_environment(config.train.model_name, config.deployment.stack)  # before ZenML is imported

    run_and_emit(lambda: run_pipeline(config), as_json)


@click.command(cls=Command)
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@config_options()
@file_source_options
@json_option
def data(
    input_path: str,
    config_path: str | None,
    overrides: tuple[str, ...],
    mode: str | None,
    text_column: str | None,
    summary_column: str | None,
    as_json: bool,
) -> None:
    """Ingest, render and validate a local JSONL/CSV/Parquet file as a ZenML pipeline.

    Prints counts (ingested, valid, quarantined with id and reason per row), pages, truncated
    and missing-glyph documents, and whether validation passed (exit code 3 if not). Thresholds
    and column mapping come from --config and --set like `deepsynth run`.
    """
    config, _source = file_source_config(input_path, config_path, overrides, mode, text_column, summary_column, "data")
    from pipelines.run import run_pipeline

    run_and_emit(lambda: run_pipeline(config), as_json)


@click.command(cls=Command)
@click.option(
    "--adapter-artifact",
    "adapter_artifact",
    required=True,
    metavar="ID",
    help=(
        "ZenML artifact version id of a train_lora 'adapter', or the id/name of the pipeline run that trained it "
        "(run_id in `deepsynth run --json`)."
    ),
)
@config_options(
    default="configs/quickstart.yaml", help="Run configuration whose export/register/evaluate sections apply."
)
@json_option
def register(adapter_artifact: str, config_path: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Export and register an adapter already in the ZenML artifact store (e.g. after an MLflow outage).

    Evaluates it first if its run has no evaluation. Idempotent: the same adapter never gets a second version.
    """
    from pipelines.config_loading import load_run_config

    config = load_run_config(config_path, list(overrides), check=False)  # the data sections do not apply
    from pipelines.registration_pipeline import register_existing_adapter

    run_and_emit(lambda: register_existing_adapter(config, adapter_artifact), as_json)
