"""The training pipeline: the data steps, train_lora, evaluate_adapter, export_and_register, check_promotion."""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from pipelines.data_pipeline import prepare_data
from steps.evaluate_adapter import evaluate_adapter
from steps.export_and_register import check_promotion, export_and_register
from steps.train_lora import train_lora


@pipeline
def training_pipeline(
    ingest_config: dict[str, Any],
    source_revision: str,
    render_config: dict[str, Any],
    validate_config: dict[str, Any],
    train_config: dict[str, Any],
    evaluate_config: dict[str, Any],
    export_config: dict[str, Any],
    register_config: dict[str, Any],
    tracker: str | None = None,
) -> None:
    """Documents in; a fine-tuned, evaluated, registered (and maybe promoted) summarizer out."""
    valid = prepare_data(ingest_config, source_revision, render_config, validate_config, tracker)
    # Training waits for the data-quality gate: a failed validation never costs a training run.
    adapter = train_lora.with_options(experiment_tracker=tracker)(valid, train_config, after="check_data_quality")
    evaluation, _report = evaluate_adapter.with_options(experiment_tracker=tracker)(valid, adapter, evaluate_config)
    _export, registration = export_and_register.with_options(experiment_tracker=tracker)(
        adapter, evaluation, valid, export_config, register_config
    )
    check_promotion(registration, register_config["require_promotion"])
