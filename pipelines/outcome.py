"""What a pipeline run produced: its outputs, a summary for people, and one way to report its failure.

Shared by :func:`pipelines.run.run_pipeline` and
:func:`pipelines.registration_pipeline.register_existing_adapter`.
"""

from __future__ import annotations

import importlib
from typing import Any

from deepsynth.errors import DataValidationError, DeepSynthError

KEY_METRICS = ("rouge_1", "rouge_2", "rouge_l", "mean_length", "empty_rate", "repetition_rate", "latency_s")


class PipelineFailed(DeepSynthError):
    """A step failed; ``summary`` holds what the run produced before it."""

    def __init__(self, message: str, summary: dict[str, Any], exit_code: int = 1):
        super().__init__(message)
        self.summary = summary
        self.exit_code = exit_code


def step_output(run: Any, step: str, name: str) -> Any | None:
    """The artifact version of output ``name`` of ``step`` in ``run``, or None if the step did not produce it."""
    step_run = run.steps.get(step)
    if step_run is None or not step_run.outputs.get(name):
        return None
    return step_run.outputs[name][0]


def _loaded_output(run: Any, step: str, name: str) -> Any | None:
    artifact = step_output(run, step, name)
    return None if artifact is None else artifact.load()


def step_failure(run: Any) -> tuple[str | None, int]:
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
    report = _loaded_output(run, "validate_dataset", "validation_report")
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
    adapter = _loaded_output(run, "train_lora", "adapter")
    if adapter is not None:
        summary["adapter"] = {"path": str(adapter.path), **adapter.summary()}
    evaluation = _loaded_output(run, "evaluate_adapter", "evaluation")
    if evaluation is not None:
        summary["evaluation"] = {system: {k: round(v, 4) for k, v in metrics.items() if k in KEY_METRICS}
                                 for system, metrics in evaluation.systems.items()}
    registration = _loaded_output(run, "export_and_register", "registration")
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


def run_failure(pipeline_name: str, run: Any, exc: Exception) -> DeepSynthError:
    """The error to raise for a failed ``run``, with the run's summary attached.

    A failed data check gives :class:`DataValidationError` (exit 3), a failed required promotion
    exit 4, a failed step its own exception's exit code, and a DeepSynthError raised outside any
    step itself.
    """
    summary = summarize(run)
    if summary.get("validation_passed") is False:
        error = DataValidationError("data validation failed:\n  " + "\n  ".join(summary["validation_failures"]))
        error.summary = summary  # type: ignore[attr-defined]
        return error
    if summary["steps"].get("check_promotion") == "failed":
        from steps.export_and_register import gate_failure_message

        return PipelineFailed(gate_failure_message(summary["registration"]), summary, exit_code=4)
    message, code = step_failure(run)
    if message is None and isinstance(exc, DeepSynthError):
        exc.summary = summary  # type: ignore[attr-defined]
        return exc
    return PipelineFailed(f"pipeline {pipeline_name} failed: {message or exc}", summary, exit_code=code)


def run_and_summarize(pipeline: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Run ``pipeline`` with ``params`` and return :func:`summarize` of the run.

    Raises:
        DeepSynthError: The run failed (see :func:`run_failure`); ``summary`` is attached.
    """
    from zenml.client import Client

    client = Client()
    try:
        run = pipeline(**params)
    except Exception as exc:
        error = run_failure(pipeline.name, client.get_pipeline(pipeline.name).last_run, exc)
        if error is exc:
            raise
        raise error from exc
    return summarize(client.get_pipeline_run(run.id))
