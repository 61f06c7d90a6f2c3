"""Step: export the adapter as a verified package, register it in MLflow, and run the promotion gate."""

from __future__ import annotations

import hashlib
import json
import math
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
from deepsynth.registry.promotion import CHALLENGER, promote, promote_if_better
from deepsynth.registry.register import register_package
from deepsynth.retry import retry_transient
from deepsynth.training.adapter_set import ExportSet, TrainedAdapterSet
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
def export_and_register_adapters(
    adapters: TrainedAdapterSet,
    evaluation: EvaluationResult,
    dataset: RenderedDataset,
    export_settings: ExportSettings,
    cfg: RegisterConfig,
) -> tuple[
    Annotated[ExportSet, ArtifactConfig(name="export", artifact_type=ArtifactType.MODEL)],
    Annotated[dict[str, Any], "registration"],
]:
    """One verified package and one registered version per adapter; the promotion gate per variant.

    Named adapters (``train.adapters``) are different models: each is registered as
    ``<register.model_name>-<variant>`` with its own challenger, champion and gate. A sweep's variants
    are candidates for one model: all are registered under ``register.model_name`` (tags ``variant``
    and ``sweep_id``), the best by ``register.gate_metric`` becomes the challenger, and only the gate
    makes it champion. Runs as the pipeline's ``export_and_register`` step.
    """
    out = ExportSet(output_dir("export"))
    try:
        run_id = str(get_step_context().pipeline_run.id)
    except RuntimeError:
        run_id = None
    zenml_version = zenml_model_version()
    sweep = adapters.sweep
    sweep_id = sweep_identity(run_id, sweep) if sweep else None
    entries, variants = [], {}
    for name, adapter in adapters.members().items():
        metrics = evaluation.variant_metrics(name)
        export = export_adapter(
            model_path=adapter.path,
            output_dir=out.path / name,
            create_package=export_settings.create_package,
            include_base_model=export_settings.include_base_model,
            package_name=export_settings.package_name,
            metrics=metrics,
            dataset=dataset.path,
            generation=evaluation.config.get("generation"),
        )
        entries.append({"name": name, "dir": name, "adapter_sha256": export.adapter_sha256})
        model_name = cfg.model_name if sweep else f"{cfg.model_name}-{name}"
        tags = {"variant": name, **({"sweep_id": sweep_id} if sweep_id else {})}
        tags.update({"zenml_model_version": zenml_version} if zenml_version else {})
        variants[name] = retry_transient(
            lambda d=export.output_dir, n=model_name, t=tags, m=metrics: register_package(
                d, n, tags=t, metrics=m, pipeline_run_id=run_id
            ),
            what="model registration",
        )
        variants[name]["metrics"] = metrics
    out.write_index(entries)
    registration = _gate_variants(variants, cfg, sweep_id)
    if zenml_version:
        log_metadata(
            metadata={f"mlflow_version.{n}": f"{v['name']}/{v['version']}" for n, v in variants.items()},
            infer_model=True,
        )
    return out, registration


def sweep_identity(run_id: str | None, sweep: dict[str, Any]) -> str:
    """A short id shared by a sweep's registered versions: the run and the grid."""
    text = json.dumps({"run": run_id, "sweep": sweep}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _gate_variants(variants: dict[str, dict[str, Any]], cfg: RegisterConfig, sweep_id: str | None) -> dict[str, Any]:
    """Challenger and promotion gate per variant (named adapters) or for the sweep's best (a sweep).

    Returns the registration summary: the headline version (the sweep's best, or the first adapter)
    with ``variants`` (name → registration) and, for a sweep, ``sweep_id`` and ``best``.
    """

    def gate(entry: dict[str, Any]) -> dict[str, Any]:
        return retry_transient(
            lambda: promote_if_better(entry["name"], entry["version"], metric=cfg.gate_metric, margin=cfg.margin),
            what="promotion gate",
        )

    if sweep_id:
        best = max(variants, key=lambda n: _score(variants[n]["metrics"].get(cfg.gate_metric)))
        head = variants[best]
        retry_transient(lambda: promote(head["name"], head["version"], alias=CHALLENGER), what="challenger alias")
        if cfg.promote:
            head["promotion"] = gate(head)
        return {**head, "variants": variants, "sweep_id": sweep_id, "best": best}
    if cfg.promote:
        for entry in variants.values():
            entry["promotion"] = gate(entry)
    first = next(iter(variants.values()))
    return {**first, "variants": variants}


def _score(value: Any) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else float("-inf")


@step(enable_cache=False)
def check_promotion(registration: dict[str, Any], required: bool) -> Annotated[bool, "promoted"]:
    """Fail the run (exit code 4 from the CLI) when promotion is required and the gate kept the champion."""
    gated = registration["variants"].values() if "variants" in registration and "sweep_id" not in registration else None
    for entry in gated or [registration]:
        promotion = entry.get("promotion") or {}
        promoted = bool(promotion.get("promoted")) or promotion.get("champion") == str(entry["version"])
        if required and not promoted:
            raise QualityGateError(gate_failure_message(entry))
        if not promoted:
            return False
    return True


def gate_failure_message(registration: dict[str, Any]) -> str:
    """Why the new version did not become champion, in one line."""
    promotion = registration.get("promotion") or {}
    reason = promotion.get("reason") or "the promotion gate did not run (register.promote is false)"
    return f"quality gate: {registration['name']} v{registration['version']} was not promoted: {reason}"
