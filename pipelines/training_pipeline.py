"""The training pipeline: the data steps, then train_lora on the valid rendered dataset."""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from pipelines.data_pipeline import prepare_data
from steps.train_lora import train_lora


@pipeline
def training_pipeline(
    ingest_config: dict[str, Any],
    source_revision: str,
    render_config: dict[str, Any],
    validate_config: dict[str, Any],
    train_config: dict[str, Any],
    tracker: str | None = None,
) -> None:
    """Ingest, render and validate documents, then fine-tune the decoder on them."""
    valid = prepare_data(ingest_config, source_revision, render_config, validate_config, tracker)
    train_lora.with_options(experiment_tracker=tracker)(valid, train_config)
