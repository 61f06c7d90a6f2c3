"""Step: score the adapter against the untrained base model and lead-k on the held-out split."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.types import HTMLString

from deepsynth.adapters import TrainedAdapter
from deepsynth.data.rendered import RenderedDataset
from deepsynth.errors import DataValidationError
from deepsynth.evaluation.config import EvaluateConfig
from deepsynth.evaluation.metrics import assert_finite
from deepsynth.evaluation.report import render_html
from deepsynth.evaluation.scoring import EvaluationResult, evaluate
from deepsynth.inference.loading import load_adapter_model
from steps.common import active_mlflow_run, report_context


@step(enable_cache=False)
def evaluate_adapter(
    dataset: RenderedDataset, adapter: TrainedAdapter, cfg: EvaluateConfig
) -> tuple[Annotated[EvaluationResult, "evaluation"], Annotated[HTMLString, "evaluation_report"]]:
    """Generate summaries for the held-out split and compute ROUGE, length, empty and repetition rates."""
    mode = adapter.trainer_config.get("mode")
    documents = dataset.documents(split=cfg.split, mode=mode)[: cfg.max_documents]
    if not documents:
        raise DataValidationError(
            f"evaluate.split: no valid documents in split {cfg.split!r}" + (f" (mode {mode})" if mode else "")
        )
    loaded = load_adapter_model(adapter.path)
    result = evaluate(
        loaded, documents, generation=cfg.generation, k=cfg.lead_k, include_base=cfg.include_base, progress=True
    )
    for system, metrics in result.systems.items():
        assert_finite(metrics, f"evaluation of {system}")
    context = report_context(
        **{
            "data source": dataset.manifest.get("source"),
            "mode": mode,
            "adapter sha256": adapter.sha256(),
            "split": cfg.split,
        }
    )
    report = render_html(
        result,
        loss_curve=adapter.metrics.get("loss_curve"),
        documents=documents,
        max_samples=cfg.report_samples,
        context=context,
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
