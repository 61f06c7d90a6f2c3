"""Re-run registration alone for an adapter already in the ZenML artifact store.

When MLflow is down while a training run registers (or evaluates), the run fails but nothing is
lost: ``train_lora``'s adapter artifact is in the artifact store. This pipeline takes that artifact
(and, from the run that produced it, the valid dataset and, if it exists, the evaluation) and runs
``export_and_register`` again (``evaluate_adapter`` first when the evaluation is missing). Registration
is idempotent on the adapter's sha256, so running it twice makes no second version.

CLI: ``deepsynth register --adapter-artifact ID --config configs/quickstart.yaml``.
Python: ``pipelines.registration_pipeline.register_existing_adapter(run_config, artifact_id)``.
"""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from deepsynth.errors import ConfigError
from deepsynth.evaluation.config import EvaluateConfig
from deepsynth.export.config import ExportSettings
from deepsynth.registry.config import RegisterConfig
from pipelines.config import RunConfig
from steps.evaluate_adapter import evaluate_adapter
from steps.export_and_register import check_promotion, export_and_register


@pipeline(enable_cache=False)
def registration_pipeline(
    adapter_id: str,
    dataset_id: str,
    evaluation_id: str | None,
    evaluate: EvaluateConfig,
    export: ExportSettings,
    register: RegisterConfig,
    tracker: str | None = None,
) -> None:
    """Export and register an existing adapter artifact (evaluating it first if it has no evaluation), then gate."""
    from zenml.client import Client

    client = Client()
    adapter = client.get_artifact_version(adapter_id)
    dataset = client.get_artifact_version(dataset_id)
    if evaluation_id:
        evaluation = client.get_artifact_version(evaluation_id)
    else:
        evaluation, _report = evaluate_adapter.with_options(experiment_tracker=tracker)(dataset, adapter, evaluate)
    _export, registration = export_and_register.with_options(experiment_tracker=tracker)(
        adapter, evaluation, dataset, export, register
    )
    check_promotion(registration, register.require_promotion)  # exit code 4 as in the training pipeline


def register_existing_adapter(config: RunConfig, adapter_artifact: str) -> dict[str, Any]:
    """Run :func:`registration_pipeline` for ``adapter_artifact`` (an artifact version id) and summarise it.

    Raises:
        ConfigError: The artifact does not exist, is not a ``train_lora`` adapter, or its run has no valid dataset.
        PipelineFailed: Registration failed again (e.g. MLflow is still unreachable).
    """
    from pipelines.local_stack import ensure_stack
    from pipelines.outcome import run_and_summarize, step_output
    from pipelines.run import zenml_model

    ensure_stack(config.deployment.stack)
    from zenml.client import Client

    client = Client()
    try:
        adapter = client.get_artifact_version(adapter_artifact)
    except (KeyError, ValueError):
        try:  # a pipeline run id or name: its train_lora adapter
            adapter = step_output(client.get_pipeline_run(adapter_artifact), "train_lora", "adapter")
        except (KeyError, ValueError):
            adapter = None
        if adapter is None:
            raise ConfigError(
                f"--adapter-artifact {adapter_artifact}: neither an artifact version id nor a "
                "pipeline run with a train_lora adapter"
            ) from None
    if adapter.data_type.attribute != "TrainedAdapter" or adapter.producer_pipeline_run_id is None:
        raise ConfigError(
            f"--adapter-artifact {adapter_artifact}: not an adapter written by train_lora "
            f"(type {adapter.data_type.attribute})"
        )
    producer = client.get_pipeline_run(adapter.producer_pipeline_run_id)
    dataset = step_output(producer, "validate_dataset", "valid")
    if dataset is None:
        raise ConfigError(f"run {producer.name}: no 'valid' dataset output to evaluate and export against")
    evaluation = step_output(producer, "evaluate_adapter", "evaluation")
    tracker = client.active_stack.experiment_tracker
    params = {
        "adapter_id": str(adapter.id),
        "dataset_id": str(dataset.id),
        "evaluation_id": str(evaluation.id) if evaluation is not None else None,
        "evaluate": config.evaluate,
        "export": config.export,
        "register": config.register,
        "tracker": tracker.name if tracker else None,
    }
    summary = run_and_summarize(
        registration_pipeline.with_options(model=zenml_model(config.register.model_name)), params
    )
    summary["adapter_artifact"] = str(adapter.id)
    summary["producer_run"] = str(producer.id)
    return summary
