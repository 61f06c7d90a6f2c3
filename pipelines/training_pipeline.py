"""The training pipeline: the data steps, train_lora, evaluate_adapter, export_and_register, check_promotion."""

from __future__ import annotations

from zenml import pipeline

from deepsynth.data.config import IngestConfig
from deepsynth.evaluation.config import EvaluateConfig
from deepsynth.export.config import ExportSettings
from deepsynth.registry.config import RegisterConfig
from deepsynth.rendering.config import RenderSettings
from deepsynth.training.config import TrainerConfig
from deepsynth.validation import ValidationConfig
from pipelines.data_pipeline import prepare_data
from steps.evaluate_adapter import evaluate_adapter, evaluate_adapters
from steps.export_and_register import check_promotion, export_and_register, export_and_register_adapters
from steps.train_lora import train_adapters, train_lora


@pipeline
def training_pipeline(
    ingest: IngestConfig,
    source_revision: str,
    render: RenderSettings,
    validate: ValidationConfig,
    train: TrainerConfig,
    evaluate: EvaluateConfig,
    export: ExportSettings,
    register: RegisterConfig,
    tracker: str | None = None,
) -> None:
    """Documents in; a fine-tuned, evaluated, registered (and maybe promoted) summarizer out."""
    valid = prepare_data(ingest, source_revision, render, validate, tracker)
    if train.adapters or train.sweep:  # several adapters on one base: the same step names, one output per variant
        adapters = train_adapters.with_options(experiment_tracker=tracker)(
            valid, train, id="train_lora", after="check_data_quality"
        )
        evaluation, _report = evaluate_adapters.with_options(experiment_tracker=tracker)(
            valid, adapters, evaluate, id="evaluate_adapter"
        )
        _exports, registration = export_and_register_adapters.with_options(experiment_tracker=tracker)(
            adapters, evaluation, valid, export, register, id="export_and_register"
        )
        check_promotion(registration, register.require_promotion)
        return
    # Training waits for the data-quality gate: a failed validation never costs a training run.
    adapter = train_lora.with_options(experiment_tracker=tracker)(valid, train, after="check_data_quality")
    evaluation, _report = evaluate_adapter.with_options(experiment_tracker=tracker)(valid, adapter, evaluate)
    _export, registration = export_and_register.with_options(experiment_tracker=tracker)(
        adapter, evaluation, valid, export, register
    )
    check_promotion(registration, register.require_promotion)


def adapters_of_run(run: str) -> list[tuple[str, str]]:
    """``(adapter name, models:/NAME/VERSION)`` of every adapter a training run registered.

    For ``deepsynth serve --run RUN``: a multi-adapter run gives each variant's version, a
    one-adapter run its one version (named after the registered model).

    Args:
        run: A pipeline run's name or id in the project's ZenML store.

    Raises:
        ConfigError: No such run, or the run registered nothing (exit code 2).
    """
    from zenml.client import Client

    from deepsynth.errors import ConfigError
    from deepsynth.training.adapter_set import run_adapters
    from pipelines.outcome import step_output

    try:
        pipeline_run = Client().get_pipeline_run(run)
    except KeyError:
        raise ConfigError(f"--run {run}: no such pipeline run (deepsynth runs list shows them)") from None
    artifact = step_output(pipeline_run, "export_and_register", "registration")
    if artifact is None:
        raise ConfigError(f"--run {run}: the run registered no model (its export_and_register step did not finish)")
    return run_adapters(artifact.load())
