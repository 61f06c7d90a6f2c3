"""Run the pipeline a :class:`~pipelines.config.RunConfig` describes and summarise the outcome."""

from __future__ import annotations

from typing import Any

from deepsynth.data.ingest import source_revision
from pipelines.config import RunConfig
from pipelines.local_stack import ensure_stack, prepare_run_environment
from pipelines.outcome import run_and_summarize
from pipelines.zenml_speedups import collection_paused


def zenml_model(name: str) -> Any:
    """The ZenML Model Control Plane model that training and registration runs attach their versions to."""
    from zenml import Model

    return Model(name=name, description="DeepSynth summarizer (LoRA on DeepSeek-OCR)")


def _prepared(config: RunConfig) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The stack made ready and the configured pipeline, its parameters and its options."""
    prepare_run_environment(config.train.model_name, config.deployment.stack)
    ensure_stack(config.deployment.stack)
    from zenml.client import Client

    from pipelines.data_pipeline import data_pipeline
    from pipelines.deployment import pipeline_options

    client = Client()
    tracker = client.active_stack.experiment_tracker
    params = {
        "ingest": config.ingest,
        "source_revision": source_revision(config.ingest),
        "render": config.render,
        "validate": config.validate,
        "tracker": tracker.name if tracker else None,
    }
    options: dict[str, Any] = {"enable_cache": config.enable_cache}
    pipeline = data_pipeline
    if config.pipeline == "training":
        from pipelines.training_pipeline import training_pipeline

        pipeline = training_pipeline
        params.update(
            train=config.train,
            evaluate=config.evaluate,
            export=config.export,
            register=config.register,
        )
        options["model"] = zenml_model(config.register.model_name)
    options.update(pipeline_options(config))  # images, GPU steps, schedule; checks tracking
    return pipeline, params, options


def run_pipeline(config: RunConfig) -> dict[str, Any]:
    """Run the configured pipeline on the active (or embedded default) stack.

    Raises:
        DataValidationError: A dataset-level data check failed (the summary is attached).
        QualityGateError: The required promotion gate failed (the summary is attached).
        PipelineFailed: Any other step failed (with the step's own exit code).
        DeepSynthError: Raised outside any step (the summary is attached).
    """
    with collection_paused():  # imports and store set-up: what they allocate lives as long as the process
        pipeline, params, options = _prepared(config)
    return run_and_summarize(pipeline.with_options(**options), params, run_name=config.run_name)
