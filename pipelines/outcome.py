"""What a pipeline run produced: its outputs, a summary for people, and one way to report its failure.

Shared by :func:`pipelines.run.run_pipeline` and
:func:`pipelines.registration_pipeline.register_existing_adapter`.
"""

from __future__ import annotations

import importlib
import os
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from deepsynth.errors import DataValidationError, DeepSynthError, QualityGateError

KEY_METRICS = ("rouge_1", "rouge_2", "rouge_l", "mean_length", "empty_rate", "repetition_rate", "latency_s")


class PipelineFailed(DeepSynthError):
    """A step failed; ``summary`` holds what the run produced before it, ``exit_code`` the step's own code."""

    def __init__(self, message: str, summary: dict[str, Any], exit_code: int | None = None):
        super().__init__(message, exit_code=exit_code, summary=summary)


def step_output(run: Any, step: str, name: str) -> Any | None:
    """The artifact version of output ``name`` of ``step`` in ``run``, or None if the step did not produce it."""
    return _output(run.steps, step, name)


def _output(steps: dict[str, Any], step: str, name: str) -> Any | None:
    """:func:`step_output` from a run's step runs (``run.steps`` asks the store again on every use)."""
    step_run = steps.get(step)
    if step_run is None or not step_run.outputs.get(name):
        return None
    return step_run.outputs[name][0]


def _loaded_output(steps: dict[str, Any], step: str, name: str) -> Any | None:
    artifact = _output(steps, step, name)
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
        code = DeepSynthError.exit_code
        module, _, cls_name = (info.source or "").rpartition(".")
        if module.split(".")[0] == "deepsynth":  # only our own modules are imported by name
            cls = getattr(importlib.import_module(module), cls_name, None)
            if isinstance(cls, type) and issubclass(cls, DeepSynthError):
                code = cls.exit_code
        return f"step {name}: {info.message}" if info.message else None, code
    return None, DeepSynthError.exit_code


def summarize(run: Any) -> dict[str, Any]:
    """What a user wants after a run: status, data counts, quarantine and validation verdict."""
    summary: dict[str, Any] = {"run_name": run.name, "run_id": str(run.id), "status": str(run.status.value)}
    steps = run.steps
    summary["steps"] = {name: str(s.status.value) for name, s in steps.items()}
    report = _loaded_output(steps, "validate_dataset", "validation_report")
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
    adapter = _loaded_output(steps, "train_lora", "adapter")
    if adapter is not None:
        summary["adapter"] = {"path": str(adapter.path), **adapter.summary()}
        summary["training"] = how_trained(adapter.trainer_config, adapter.metrics)
    evaluation = _loaded_output(steps, "evaluate_adapter", "evaluation")
    if evaluation is not None:
        from deepsynth.evaluation.report import verdict

        summary["evaluation"] = {
            system: {k: round(v, 4) for k, v in metrics.items() if k in KEY_METRICS}
            for system, metrics in evaluation.systems.items()
        }
        summary["evaluation_verdict"] = verdict(evaluation)[1]
    registration = _loaded_output(steps, "export_and_register", "registration")
    if registration is not None:
        summary["registration"] = registration
    reports = report_locations(run, steps)
    if reports:
        summary["reports"] = reports
    summary["browse"] = browse_hints(run.name, registration["name"] if registration else None)
    return summary


def how_trained(config: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """How the train step ran: processes (``world_size``), device, precision and quantization.

    The device is the one the trainer recorded, else the configured one; ``auto`` is resolved from
    the peak-FLOP source the trainer wrote (a GPU's datasheet, or a CPU estimate).
    """
    device = metrics.get("device") or config.get("device") or "auto"
    if device == "auto":
        source = str(metrics.get("mfu_peak_source") or "")
        device = "cpu" if source.startswith("CPU") else "cuda" if "GPU" in source or "datasheet" in source else device
    return {
        "world_size": metrics.get("world_size", 1),
        "device": device,
        "precision": config.get("mixed_precision") or "no",
        "quantization": f"qlora {config.get('qlora_bits') or 4}-bit" if config.get("use_qlora") else "none",
    }


#: The HTML reports a run writes: step, output artifact, file inside the artifact's folder.
REPORTS = {
    "validation": ("validate_dataset", "validation_report", "report.html"),
    "evaluation": ("evaluate_adapter", "evaluation_report", "output.html"),
}


def report_locations(run: Any, steps: dict[str, Any] | None = None) -> dict[str, dict[str, str]]:
    """Where each report of ``run`` is: its HTML file and its page in MLflow's UI (``deepsynth ui``).

    ``steps``: ``run.steps`` when the caller already has it.
    """
    from pipelines.dashboards import mlflow_run_url

    steps = run.steps if steps is None else steps
    out = {}
    for name, (step, output, filename) in REPORTS.items():
        artifact = _output(steps, step, output)
        if artifact is None:
            continue
        entry = {}
        if (Path(artifact.uri) / filename).is_file():
            entry["file"] = str(Path(artifact.uri) / filename)
        metadata = steps[step].run_metadata
        if metadata.get("mlflow_run_id") and metadata.get("mlflow_experiment_id"):
            entry["mlflow_ui"] = mlflow_run_url(str(metadata["mlflow_experiment_id"]), str(metadata["mlflow_run_id"]))
        if entry:
            out[name] = entry
    return out


def venv_executable(name: str) -> str:
    """The absolute path of this environment's ``name`` script (the venv's ``bin``), so it runs without activation."""
    path = Path(sys.executable).parent / name  # not resolved: a venv's python is a link to the base interpreter
    if path.is_file():
        return shlex.quote(str(path.absolute()))
    return shlex.join([str(Path(sys.executable).absolute()), "-m", "deepsynth_cli" if name == "deepsynth" else name])


def store_environment() -> str:
    """The variables a command line needs to use this run's stores from any directory: ``DEEPSYNTH_HOME=…``
    unless the home is the user-level default (found from anywhere), and ``ZENML_CONFIG_PATH=…`` when it is
    not the home's own; each followed by a space, or an empty string."""
    from deepsynth.paths import deepsynth_home, default_home

    home = deepsynth_home()
    words = [] if home == default_home() else [f"DEEPSYNTH_HOME={shlex.quote(str(home))}"]
    zenml = os.environ.get("ZENML_CONFIG_PATH")
    if zenml and Path(zenml).resolve() != home / "zenml":
        words.append(f"ZENML_CONFIG_PATH={shlex.quote(str(Path(zenml).resolve()))}")
    return "".join(word + " " for word in words)


def browse_hints(run_name: str, model_name: str | None) -> dict[str, str]:
    """Commands that browse this run, its reports and registered versions, each working as printed from any
    directory without an activated virtualenv (absolute paths, the home in the environment)."""
    from zenml.client import Client

    from pipelines.dashboards import mlflow_ui_command, printable

    env, deepsynth = store_environment(), venv_executable("deepsynth")
    hints = {
        "run": f"{env}{deepsynth} runs show {shlex.quote(run_name)}",
        "runs": f"{env}{deepsynth} runs list",
        "ui": f"{env}{deepsynth} ui   # MLflow UI on http://127.0.0.1:5000, ZenML dashboard on http://127.0.0.1:8237",
    }
    tracker = Client().active_stack.experiment_tracker
    if tracker is not None:
        command = mlflow_ui_command(tracker.get_tracking_uri())
        hints["mlflow_ui"] = printable([venv_executable("mlflow"), *command[1:]])
    if model_name:
        hints["models"] = f"{env}{deepsynth} models list"
        hints["summarize"] = f"{env}{deepsynth} summarize --model models:/{shlex.quote(model_name)}@champion FILE.txt"
    return hints


def run_failure(pipeline_name: str, run: Any, exc: Exception) -> DeepSynthError:
    """The error to raise for a failed ``run``, with the run's summary attached.

    A failed data check gives :class:`DataValidationError` (exit 3), a failed required promotion
    exit 4, a failed step its own exception's exit code, and a DeepSynthError raised outside any
    step itself.
    """
    summary = summarize(run)
    if summary.get("validation_passed") is False:
        failures = "\n  ".join(summary["validation_failures"])
        return DataValidationError(f"data validation failed:\n  {failures}", summary=summary)
    if summary["steps"].get("check_promotion") == "failed":
        from steps.export_and_register import gate_failure_message

        return QualityGateError(gate_failure_message(summary["registration"]), summary=summary)
    message, code = step_failure(run)
    if message is None and isinstance(exc, DeepSynthError):
        return exc.with_summary(summary)
    return PipelineFailed(f"pipeline {pipeline_name} failed: {message or exc}", summary, exit_code=code)


def run_name_for(pipeline_name: str, template: str | None) -> str:
    """The run's final name, known before it starts: the config's ``run_name`` with ``{date}``/``{time}``
    filled in, else the pipeline name, the time and a random suffix (so concurrent runs never share one)."""
    from zenml.utils.string_utils import format_name_template

    if template:
        return format_name_template(template)
    return f"{pipeline_name}-{time.strftime('%Y_%m_%d-%H_%M_%S')}-{uuid.uuid4().hex[:6]}"


def run_and_summarize(pipeline: Any, params: dict[str, Any], run_name: str | None = None) -> dict[str, Any]:
    """Run ``pipeline`` with ``params`` and return :func:`summarize` of the run.

    Runs interrupted earlier on this machine are closed first (:mod:`pipelines.interrupted_runs`);
    only the active stack's ZenML integrations are activated (:mod:`pipelines.zenml_speedups`).
    A failure is reported from this run, found by its name, even when other runs of the same
    pipeline are going.

    Args:
        pipeline: The ZenML pipeline (with its options).
        params: Its parameters.
        run_name: The config's ``run_name`` template (default: pipeline name, time and a random suffix).

    Raises:
        DeepSynthError: The run failed (see :func:`run_failure`); ``summary`` is attached.
    """
    from zenml.client import Client

    from pipelines.interrupted_runs import close_interrupted_runs, recorded_run
    from pipelines.zenml_speedups import speed_up_runs

    client = Client()
    speed_up_runs(client.active_stack_model)
    close_interrupted_runs(client)
    name = run_name_for(pipeline.name, run_name)
    try:
        with recorded_run(name):
            run = pipeline.with_options(run_name=name)(**params)
    except Exception as exc:
        try:
            own = client.get_pipeline_run(name)
        except KeyError:  # failed before ZenML created the run
            raise exc from None
        error = run_failure(pipeline.name, own, exc)
        if error is exc:
            raise
        raise error from exc
    return summarize(client.get_pipeline_run(run.id))
