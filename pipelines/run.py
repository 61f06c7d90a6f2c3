"""Run the pipeline a :class:`~pipelines.config.RunConfig` describes and summarise the outcome."""

from __future__ import annotations

import importlib
from dataclasses import asdict
from typing import Any

from deepsynth.data.ingest import source_revision
from deepsynth.errors import DataValidationError, DeepSynthError
from pipelines.config import RunConfig
from pipelines.local_stack import ensure_stack


KEY_METRICS = ("rouge_1", "rouge_2", "rouge_l", "mean_length", "empty_rate", "repetition_rate", "latency_s")


class PipelineFailed(DeepSynthError):
    """A step failed; ``summary`` holds what the run produced before it."""

    def __init__(self, message: str, summary: dict[str, Any], exit_code: int = 1):
        super().__init__(message)
        self.summary = summary
        self.exit_code = exit_code


def _output(run: Any, step: str, name: str) -> Any | None:
    """Load output ``name`` of ``step`` in ``run``, or None if the step did not produce it."""
    step_run = run.steps.get(step)
    if step_run is None or name not in step_run.outputs:
        return None
    return step_run.outputs[name][0].load()


def _step_failure(run: Any) -> tuple[str | None, int]:
    """The failed step's error message, and its exit code when it raised a DeepSynthError.

    ZenML raises a generic error for a failed run; the step's own exception (e.g. SIGTERM during
    training, exit 143) is recorded on the step run, by its class's import path.
    """
    for name, step_run in run.steps.items():
        info = step_run.exception_info
        if str(step_run.status.value) != "failed" or info is None:
            continue
        code = 1
        module, _, cls_name = (info.source or "").rpartition(".")
        if module.split(".")[0] == "deepsynth":  # only our own modules are imported by name
            cls = getattr(importlib.import_module(module), cls_name, None)
            if isinstance(cls, type) and issubclass(cls, DeepSynthError):
                code = cls.exit_code
        return f"step {name}: {info.message}" if info.message else None, code
    return None, 1


def summarize(run: Any) -> dict[str, Any]:
    """What a user wants after a run: status, data counts, quarantine and validation verdict."""
    summary: dict[str, Any] = {"run_name": run.name, "run_id": str(run.id), "status": str(run.status.value)}
    summary["steps"] = {name: str(s.status.value) for name, s in run.steps.items()}
    report = _output(run, "validate_dataset", "validation_report")
    if report is not None:
        summary.update(
            ingested=report.ingested,
            valid=report.valid,
            quarantined=report.quarantined,
            quarantine=[{"id": q.get("id"), "reason": q.get("reason")} for q in report.quarantine],
            pages=report.pages,
            truncated=report.truncated,
            missing_glyphs=report.missing_glyphs,
            validation_passed=report.success,
            validation_failures=report.failures,
        )
    adapter = _output(run, "train_lora", "adapter")
    if adapter is not None:
        summary["adapter"] = {"path": str(adapter.path), **adapter.summary()}
    evaluation = _output(run, "evaluate_adapter", "evaluation")
    if evaluation is not None:
        summary["evaluation"] = {system: {k: round(v, 4) for k, v in metrics.items() if k in KEY_METRICS}
                                 for system, metrics in evaluation.systems.items()}
    registration = _output(run, "export_and_register", "registration")
    if registration is not None:
        summary["registration"] = registration
        summary["browse"] = browse_hints(registration["name"])
    return summary


def browse_hints(model_name: str) -> dict[str, str]:
    """Commands that show the registered versions (CLI, MLflow UI) and use the champion."""
    from zenml.client import Client

    tracker = Client().active_stack.experiment_tracker
    hints = {"cli": "deepsynth models list", "summarize": f"deepsynth summarize --model models:/{model_name}@champion FILE.txt"}
    if tracker is not None:
        hints["mlflow_ui"] = f"mlflow ui --backend-store-uri {tracker.get_tracking_uri()}"
    return hints


def run_pipeline(config: RunConfig) -> dict[str, Any]:
    """Run the configured pipeline on the active (or embedded default) stack.

    Raises:
        DataValidationError: A dataset-level data check failed (the summary is attached).
        PipelineFailed: Any other step failed (exit code 4 when it was the required promotion gate).
    """
    ensure_stack(config.deployment.stack)
    from zenml import Model
    from zenml.client import Client

    from pipelines.data_pipeline import data_pipeline
    from pipelines.deployment import pipeline_options

    client = Client()
    tracker = client.active_stack.experiment_tracker
    params = {
        "ingest_config": asdict(config.ingest),
        "source_revision": source_revision(config.ingest),
        "render_config": asdict(config.render),
        "validate_config": asdict(config.validate),
        "tracker": tracker.name if tracker else None,
    }
    options: dict[str, Any] = {"enable_cache": config.enable_cache}
    pipeline = data_pipeline
    if config.pipeline == "training":
        from pipelines.training_pipeline import training_pipeline  # imports the model libraries

        pipeline = training_pipeline
        params.update(
            train_config=asdict(config.train),
            evaluate_config=asdict(config.evaluate),
            export_config=asdict(config.export),
            register_config=asdict(config.register),
        )
        options["model"] = Model(name=config.register.model_name, description="DeepSynth summarizer (LoRA on DeepSeek-OCR)")
    options.update(pipeline_options(config))  # images, GPU steps, schedule; checks tracking
    if config.run_name:
        options["run_name"] = config.run_name
    pipeline = pipeline.with_options(**options)
    try:
        run = pipeline(**params)
    except Exception as exc:
        run = client.get_pipeline(pipeline.name).last_run
        summary = summarize(run)
        if summary.get("validation_passed") is False:
            error = DataValidationError("data validation failed:\n  " + "\n  ".join(summary["validation_failures"]))
            error.summary = summary  # type: ignore[attr-defined]
            raise error from exc
        if summary.get("steps", {}).get("check_promotion") == "failed":
            from steps.export_and_register import gate_failure_message

            raise PipelineFailed(gate_failure_message(summary["registration"]), summary, exit_code=4) from exc
        message, code = _step_failure(run)
        raise PipelineFailed(f"pipeline {pipeline.name} failed: {message or exc}", summary, exit_code=code) from exc
    return summarize(client.get_pipeline_run(run.id))
