"""The data pipeline: ingest → render_pages → validate_dataset → check_data_quality."""

from __future__ import annotations

from zenml import pipeline

from deepsynth.data.config import IngestConfig
from deepsynth.rendering.config import RenderSettings
from deepsynth.validation import ValidationConfig
from steps.ingest import ingest
from steps.render_pages import render_pages
from steps.validate_dataset import check_data_quality, validate_dataset


def prepare_data(
    ingest_config: IngestConfig,
    source_revision: str,
    render: RenderSettings,
    validate: ValidationConfig,
    tracker: str | None,
):
    """Wire the data steps (shared by every pipeline); returns the valid rendered dataset."""
    documents = ingest(ingest_config, source_revision)
    rendered = render_pages(documents, render)
    valid, _quarantine, report = validate_dataset.with_options(experiment_tracker=tracker)(
        documents, rendered, validate
    )
    check_data_quality(report)
    return valid


@pipeline
def data_pipeline(
    ingest: IngestConfig,
    source_revision: str,
    render: RenderSettings,
    validate: ValidationConfig,
    tracker: str | None = None,
) -> None:
    """Ingest documents, render them to page images and validate the result."""
    prepare_data(ingest, source_revision, render, validate, tracker)
