"""Steps: validate the rendered dataset (quarantining bad rows) and gate the run on the result."""

from __future__ import annotations

from typing import Annotated, Any

from zenml import step
from zenml.config import CachePolicy

from deepsynth import validation
from deepsynth.data.documents import DocumentDataset
from deepsynth.data.rendered import RenderedDataset
from deepsynth.validation import ValidationConfig, ValidationReport
from steps.common import active_mlflow_run, output_dir, report_context

# By import path, as RENDER_CACHE (steps.render_pages).
VALIDATE_CACHE = CachePolicy(
    source_dependencies=[
        f"deepsynth.validation.{name}" for name in ("config", "html", "report", "rules", "suite", "validate")
    ]
)
# The gate's outcome depends only on the report and on raise_for_failure; a failed gate is never cached.
GATE_CACHE = CachePolicy(source_dependencies=["deepsynth.validation.report"])


@step(cache_policy=VALIDATE_CACHE)
def validate_dataset(
    documents: DocumentDataset, rendered: RenderedDataset, config: ValidationConfig
) -> tuple[
    Annotated[RenderedDataset, "valid"],
    Annotated[list[dict[str, Any]], "quarantine"],
    Annotated[ValidationReport, "validation_report"],
]:
    """Run the expectation suite; rows that fail a row-level rule go to the quarantine list."""
    outcome = validation.validate_dataset(
        rendered,
        config,
        output_dir("valid"),
        prior_rejects=documents.rejects,
    )
    outcome.report.context = report_context(
        **{"data source": documents.source, "modes": ", ".join(rendered.manifest.get("settings", {}).get("modes", []))}
    )
    if active_mlflow_run():
        import mlflow

        report = outcome.report
        mlflow.log_metrics(
            {"data_ingested": report.ingested, "data_valid": report.valid, "data_quarantined": report.quarantined}
        )
        mlflow.log_dict(report.to_dict(), "validation/report.json")
        mlflow.log_text(validation.render_report_html(report), "validation/report.html")
    return outcome.valid, outcome.quarantine, outcome.report


@step(cache_policy=GATE_CACHE)
def check_data_quality(report: ValidationReport) -> Annotated[bool, "data_quality_passed"]:
    """Fail the run (exit code 3 from the CLI) when a dataset-level check failed."""
    validation.raise_for_failure(report)
    return True
