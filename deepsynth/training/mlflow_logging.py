"""Log a finished training run to the currently active MLflow run.

The caller (the ZenML step, through the stack's experiment tracker) opens the run; this module
never sets a tracking URI or starts a run of its own. Only the main data-parallel process logs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from deepsynth.adapter_files import TRAINING_METRICS
from deepsynth.configuration import flatten
from deepsynth.errors import DeepSynthError
from deepsynth.training.config import TrainerConfig

SCALAR_METRICS = (
    "samples_per_second",
    "tokens_per_second",
    "model_tflops_per_second",
    "mfu",
    "train_runtime_s",
    "initial_loss",
    "final_loss",
    "trainable_params",
    "total_params",
    "peak_rss_mb",
    "global_step",
    "feature_cache_hits",
    "feature_cache_misses",
)


def log_training_to_mlflow(
    config: TrainerConfig,
    metrics: dict[str, Any],
    adapter_dir: str | os.PathLike | None = None,
    system: dict[str, str] | None = None,
    artifact_path: str = "adapter",
) -> bool:
    """Log params, the loss curve, throughput/MFU, system info and the adapter to the active run.

    Args:
        config: The run's :class:`TrainerConfig` (logged as params).
        metrics: What :meth:`DeepSynthLoRATrainer.train` returned.
        adapter_dir: Directory to log as artifacts (default ``metrics["adapter_dir"]``).
        system: Extra tags (default: the ``system`` block of ``training_metrics.json`` if present).
        artifact_path: Artifact folder name in the run.

    Returns:
        ``True`` if logged, ``False`` on a non-main rank (which never logs).

    Raises:
        DeepSynthError: No MLflow run is active.
    """
    if int(metrics.get("rank", 0)) != 0:
        return False
    import mlflow

    if mlflow.active_run() is None:
        raise DeepSynthError("no active MLflow run: open one (the ZenML experiment tracker does) before logging")
    params = flatten(config.to_dict())  # a section's settings as ``optimizer.learning_rate``
    mlflow.log_params({k: ("" if v is None else str(v))[:500] for k, v in params.items()})
    for step, loss, lr in metrics.get("loss_curve", []):
        mlflow.log_metric("train_loss", float(loss), step=int(step))
        mlflow.log_metric("learning_rate", float(lr), step=int(step))
    scalars = {k: float(metrics[k]) for k in SCALAR_METRICS if metrics.get(k) is not None}
    mlflow.log_metrics(scalars)
    adapter = Path(adapter_dir or metrics["adapter_dir"])
    if system is None:
        metrics_file = adapter / TRAINING_METRICS
        if metrics_file.is_file():
            import json

            system = json.loads(metrics_file.read_text()).get("system")
    tags = {f"system.{k}": str(v) for k, v in (system or {}).items()}
    tags["mfu_peak_source"] = str(metrics.get("mfu_peak_source", ""))
    mlflow.set_tags(tags)
    if adapter.is_dir():
        # Checkpoints are resumption state, not part of the result.
        for item in sorted(adapter.iterdir()):
            if item.name == "checkpoints":
                continue
            if item.is_dir():
                mlflow.log_artifacts(str(item), artifact_path=f"{artifact_path}/{item.name}")
            else:
                mlflow.log_artifact(str(item), artifact_path=artifact_path)
    return True


def log_adapters_to_mlflow(config: TrainerConfig, metrics: dict[str, Any]) -> bool:
    """A multi-adapter run: the run's params, each adapter's loss curve and scalars under ``<name>.``, the folder.

    Args:
        config: The run's :class:`TrainerConfig` (with its adapters or sweep).
        metrics: What :meth:`MultiAdapterTrainer.train` returned (``adapters``: name → metrics).
    """
    if int(metrics.get("rank", 0)) != 0:
        return False
    import mlflow

    if mlflow.active_run() is None:
        raise DeepSynthError("no active MLflow run: open one (the ZenML experiment tracker does) before logging")
    params = flatten({k: v for k, v in config.to_dict().items() if k not in ("adapters", "sweep")})
    params["adapters"] = ",".join(metrics["adapters"])
    mlflow.log_params({k: ("" if v is None else str(v))[:500] for k, v in params.items()})
    for name, adapter in metrics["adapters"].items():
        for step, loss, _lr in adapter.get("loss_curve", []):
            mlflow.log_metric(f"train_loss.{name}", float(loss), step=int(step))
        mlflow.log_metrics({f"{name}.{k}": float(adapter[k]) for k in SCALAR_METRICS if adapter.get(k) is not None})
    mlflow.log_metrics({k: float(metrics[k]) for k in ("train_runtime_s", "tokens_per_second", "peak_rss_mb")})
    mlflow.log_artifacts(str(metrics["adapter_dir"]), artifact_path="adapters")
    return True
