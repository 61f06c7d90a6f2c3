"""Step: export the adapter as a verified package, register it in MLflow, and run the promotion gate."""

from __future__ import annotations

from typing import Annotated, Any

from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.enums import ArtifactType

from deepsynth.adapters import TrainedAdapter
from deepsynth.data.rendered import RenderedDataset
from deepsynth.errors import QualityGateError
from deepsynth.evaluation.result import EvaluationResult
from deepsynth.export.config import ExportSettings
from deepsynth.export.exporter import ExportResult, export_adapter
from deepsynth.registry.config import RegisterConfig
from deepsynth.registry.promotion import promote_if_better
from deepsynth.registry.register import register_package
from deepsynth.retry import retry_transient
from steps.common import output_dir, zenml_model_version


@step(enable_cache=False)
def export_and_register(
    adapter: TrainedAdapter,
    evaluation: EvaluationResult,
    dataset: RenderedDataset,
    export_settings: ExportSettings,
    cfg: RegisterConfig,
) -> tuple[
    Annotated[ExportResult, ArtifactConfig(name="export", artifact_type=ArtifactType.MODEL)],
    Annotated[dict[str, Any], "registration"],
]:
    """Export, register (idempotent on the adapter's sha256) and gate the promotion to champion.

    Args:
        export_settings: The ``export`` section; the adapter artifact is the model path and the
            export artifact's folder the output dir.
        cfg: The ``register`` section.
    """
    metrics = evaluation.adapter_metrics
    export = export_adapter(
        model_path=adapter.path,
        output_dir=output_dir("export"),
        create_package=export_settings.create_package,
        include_base_model=export_settings.include_base_model,
        package_name=export_settings.package_name,
        metrics=metrics,
        dataset=dataset.path,
        generation=evaluation.config.get("generation"),
    )
    try:
        run_id = str(get_step_context().pipeline_run.id)
    except RuntimeError:
        run_id = None
    zenml_version = zenml_model_version()
    tags = {"zenml_model_version": zenml_version} if zenml_version else {}
    registration = retry_transient(
        lambda: register_package(export.output_dir, cfg.model_name, tags=tags, metrics=metrics, pipeline_run_id=run_id),
        what="model registration",
    )
    if cfg.promote:
        registration["promotion"] = retry_transient(
            lambda: promote_if_better(
                cfg.model_name, registration["version"], metric=cfg.gate_metric, margin=cfg.margin
            ),
            what="promotion gate",
        )
    if zenml_version:
        log_metadata(
            metadata={
                "mlflow_model": cfg.model_name,
                "mlflow_version": str(registration["version"]),
                "adapter_sha256": export.adapter_sha256,
                **{f"metric.{k}": v for k, v in metrics.items()},
            },
            infer_model=True,
        )
    return export, registration


@step(enable_cache=False)
def check_promotion(registration: dict[str, Any], required: bool) -> Annotated[bool, "promoted"]:
    """Fail the run (exit code 4 from the CLI) when promotion is required and the gate kept the champion."""
    promotion = registration.get("promotion") or {}
    promoted = bool(promotion.get("promoted")) or promotion.get("champion") == str(registration["version"])
    if required and not promoted:
        raise QualityGateError(gate_failure_message(registration))
    return promoted


def gate_failure_message(registration: dict[str, Any]) -> str:
    """Why the new version did not become champion, in one line."""
    promotion = registration.get("promotion") or {}
    reason = promotion.get("reason") or "the promotion gate did not run (register.promote is false)"
    return f"quality gate: {registration['name']} v{registration['version']} was not promoted: {reason}"
