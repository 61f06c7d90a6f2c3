"""Recovery commands: ``deepsynth register --adapter-artifact ID`` re-runs registration alone.

Attached to the main group in :mod:`deepsynth.cli`. ZenML and MLflow are imported inside the
command only, so ``deepsynth --help`` stays instant.
"""

from __future__ import annotations

import click


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
    import contextlib
    import sys

    from deepsynth.cli import _emit
    from deepsynth.errors import DeepSynthError
    from deepsynth.run_config import load_run_config
    from pipelines.registration_pipeline import register_existing_adapter

    config = load_run_config(config_path, list(overrides))
    try:
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            summary = register_existing_adapter(config, adapter_artifact)
    except DeepSynthError as exc:
        if getattr(exc, "summary", None):
            _emit(exc.summary, as_json)
        raise
    _emit(summary, as_json)
