"""Step: score the adapter against the untrained base model and lead-k on the held-out split."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.config import CachePolicy
from zenml.types import HTMLString

from deepsynth.adapters import TrainedAdapter
from deepsynth.data.rendered import RenderedDataset
from deepsynth.errors import DataValidationError
from deepsynth.evaluation.config import EvaluateConfig
from deepsynth.evaluation.metrics import assert_finite
from deepsynth.evaluation.report import render_html
from deepsynth.evaluation.result import EvaluationResult
from deepsynth.training.adapter_set import TrainedAdapterSet
from steps.common import active_mlflow_run, report_context, source_digest

#: The code the scores are computed by, beyond the step's own: part of the evaluation steps' cache key.
EVALUATION_CODE = (
    "deepsynth.evaluation",
    "deepsynth.inference",
    "deepsynth.models",
    "deepsynth.adapters",
    "deepsynth.data.rendered",
)


def evaluation_code() -> str:
    """The digest of :data:`EVALUATION_CODE` (ZenML calls it to compute the cache key)."""
    return source_digest(*EVALUATION_CODE)


# Scores depend on the evaluation, generation and model code as well as on the step's inputs.
# By import path: resolving the function object would set up ZenML's store at import, before the CLI
# has chosen the project's.
EVALUATE_CACHE = CachePolicy(cache_func="steps.evaluate_adapter.evaluation_code")


@step(cache_policy=EVALUATE_CACHE)
def evaluate_adapter(
    dataset: RenderedDataset, adapter: TrainedAdapter, cfg: EvaluateConfig
) -> tuple[Annotated[EvaluationResult, "evaluation"], Annotated[HTMLString, "evaluation_report"]]:
    """Generate summaries for the held-out split and compute ROUGE, length, empty and repetition rates."""
    from deepsynth.evaluation.scoring import evaluate  # the model libraries: only when scoring
    from deepsynth.inference.loading import load_adapter_model

    mode = adapter.trainer_config.get("mode")
    documents = _documents(dataset, cfg, mode)
    loaded = load_adapter_model(adapter.path)
    result = evaluate(
        loaded, documents, generation=cfg.generation, k=cfg.lead_k, include_base=cfg.include_base, progress=True
    )
    context = {"adapter sha256": adapter.sha256()}
    # ZenML reads a step's outputs from its return statement: a tuple literal for two outputs.
    result, report = _finish(result, dataset, documents, cfg, mode, context, adapter.metrics.get("loss_curve"))
    return result, report


@step(cache_policy=EVALUATE_CACHE)
def evaluate_adapters(
    dataset: RenderedDataset, adapters: TrainedAdapterSet, cfg: EvaluateConfig
) -> tuple[Annotated[EvaluationResult, "evaluation"], Annotated[HTMLString, "evaluation_report"]]:
    """Score every adapter of a multi-adapter run (systems ``adapter/<name>``); the base and lead-k once.

    Runs as the pipeline's ``evaluate_adapter`` step; the report's metric table puts the adapters side by side.
    """
    from deepsynth.evaluation.adapter_set import evaluate_adapter_set  # the model libraries: only when scoring

    members = adapters.members()
    mode = next(iter(members.values())).trainer_config.get("mode")
    documents = _documents(dataset, cfg, mode)
    result = evaluate_adapter_set(
        {name: adapter.path for name, adapter in members.items()},
        documents,
        generation=cfg.generation,
        k=cfg.lead_k,
        include_base=cfg.include_base,
        progress=True,
    )
    context = {"adapters": ", ".join(members)}
    result, report = _finish(result, dataset, documents, cfg, mode, context, None)
    return result, report


def _documents(dataset: RenderedDataset, cfg: EvaluateConfig, mode: str | None) -> list:
    documents = dataset.documents(split=cfg.split, mode=mode)[: cfg.max_documents]
    if not documents:
        raise DataValidationError(
            f"evaluate.split: no valid documents in split {cfg.split!r}" + (f" (mode {mode})" if mode else "")
        )
    return documents


def _finish(result, dataset, documents, cfg, mode, about, loss_curve) -> tuple[EvaluationResult, HTMLString]:
    """Check every metric is finite, render the report, log both to MLflow."""
    for system, metrics in result.systems.items():
        assert_finite(metrics, f"evaluation of {system}")
    context = report_context(
        **{"data source": dataset.manifest.get("source"), "mode": mode, **about, "split": cfg.split}
    )
    report = render_html(
        result, loss_curve=loss_curve, documents=documents, max_samples=cfg.report_samples, context=context
    )
    if active_mlflow_run():
        import mlflow

        mlflow.log_metrics(
            {
                f"eval_{system}_{name}": value
                for system, metrics in result.systems.items()
                for name, value in metrics.items()
            }
        )
        mlflow.log_text(report, "evaluation/report.html")
        mlflow.log_dict(result.to_dict(), "evaluation/result.json")
    return result, HTMLString(report)
