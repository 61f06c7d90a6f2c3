"""Commands that run a pipeline: ``deepsynth run``, ``deepsynth data`` and ``deepsynth register``.

ZenML and MLflow are imported inside the commands only, so ``deepsynth --help`` stays instant.
"""

from __future__ import annotations

import click

from deepsynth_cli.output import run_and_emit

MODES = ("tiny", "small", "base", "large", "gundam")


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Run configuration YAML (see configs/).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. --set render.modes=[tiny]. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
def run(config_path: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Run the pipeline that a config YAML describes."""
    from pipelines.config_loading import load_run_config
    from pipelines.run import run_pipeline

    config = load_run_config(config_path, list(overrides))
    run_and_emit(lambda: run_pipeline(config), as_json)


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--mode", type=click.Choice(MODES), default="base", show_default=True, help="DeepSeek-OCR resolution mode.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the document text.")
@click.option("--summary-column", default="summary", show_default=True, help="Column holding the reference summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def data(input_path: str, mode: str, text_column: str, summary_column: str, as_json: bool) -> None:
    """Ingest, render and validate a local JSONL/CSV/Parquet file as a ZenML pipeline.

    Prints counts (ingested, valid, quarantined with id and reason per row), pages, truncated
    and missing-glyph documents, and whether validation passed (exit code 3 if not).
    """
    from deepsynth.configuration import from_dict
    from pipelines.config import RunConfig
    from pipelines.run import run_pipeline

    config = from_dict(
        RunConfig,
        {
            "pipeline": "data",
            "ingest": {"source": "file", "path": input_path, "text_column": text_column, "summary_column": summary_column},
            "render": {"modes": [mode]},
        },
        source="deepsynth data",
    )
    run_and_emit(lambda: run_pipeline(config), as_json)


@click.command()
@click.option("--adapter-artifact", "adapter_artifact", required=True, metavar="ID",
              help="ZenML artifact version id of a train_lora 'adapter', or the id/name of the pipeline run that trained it (run_id in `deepsynth run --json`).")
@click.option("--config", "config_path", default="configs/quickstart.yaml", show_default=True, type=click.Path(dir_okay=False),
              help="Run configuration whose export/register/evaluate sections apply.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
def register(adapter_artifact: str, config_path: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Export and register an adapter already in the ZenML artifact store (e.g. after an MLflow outage).

    Evaluates it first if its run has no evaluation. Idempotent: the same adapter never gets a second version.
    """
    from pipelines.config_loading import load_run_config
    from pipelines.registration_pipeline import register_existing_adapter

    config = load_run_config(config_path, list(overrides))
    run_and_emit(lambda: register_existing_adapter(config, adapter_artifact), as_json)
