"""Step: fine-tune DeepSeek-OCR's decoder with LoRA/QLoRA on the valid rendered dataset."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from typing import Annotated

from zenml import ArtifactConfig, step
from zenml.config import CachePolicy
from zenml.enums import ArtifactType

from deepsynth.adapters import TrainedAdapter
from deepsynth.data.rendered import RenderedDataset
from deepsynth.retry import is_transient, retry_transient
from deepsynth.threads import apply_thread_policy
from deepsynth.training.adapter_set import TrainedAdapterSet
from deepsynth.training.config import TrainerConfig
from deepsynth.training.launch import launch_training, resolve_num_processes
from deepsynth.training.mlflow_logging import log_adapters_to_mlflow, log_training_to_mlflow
from steps.common import active_mlflow_run, output_dir, source_digest

logger = logging.getLogger(__name__)


#: The code an adapter is computed by, beyond the step's own: part of the training steps' cache key.
TRAINING_CODE = (
    "deepsynth.training",
    "deepsynth.models",
    "deepsynth.adapters",
    "deepsynth.adapter_files",
    "deepsynth.data.rendered",
)


def training_code() -> str:
    """The digest of :data:`TRAINING_CODE` (ZenML calls it to compute the cache key)."""
    return source_digest(*TRAINING_CODE)


# A run with nothing changed reuses the adapter; a change to the trainer or the model code trains again.
# By import path: resolving the function object would set up ZenML's store at import, before the CLI
# has chosen the project's.
TRAIN_CACHE = CachePolicy(cache_func="steps.train_lora.training_code")


def _train(config: TrainerConfig, dataset: RenderedDataset, out: str) -> dict:
    """Train into ``out`` in this process or in torchrun ranks; checkpoints kept where a retried run finds them."""
    from deepsynth.training.fingerprints import with_resumable_state  # the model libraries: only when training
    from deepsynth.training.multi_adapter import make_trainer

    trainer_config = dataclasses.replace(config, output_dir=out)
    own_state_dir = trainer_config.state_dir is None
    if own_state_dir:  # ZenML deletes a failed step's outputs: keep checkpoints where a retry finds them
        trainer_config = with_resumable_state(trainer_config, dataset.path)
    processes = resolve_num_processes(trainer_config)
    if processes > 1:
        metrics = launch_training(trainer_config, dataset.path, processes)
    else:
        policy = apply_thread_policy(1)
        metrics, _checkpoints = make_trainer(trainer_config, on_step=policy.refresh).train(dataset)
    if own_state_dir:
        shutil.rmtree(trainer_config.state_dir, ignore_errors=True)
    return metrics


@step(cache_policy=TRAIN_CACHE)
def train_lora(
    dataset: RenderedDataset, config: TrainerConfig
) -> Annotated[TrainedAdapter, ArtifactConfig(name="adapter", artifact_type=ArtifactType.MODEL)]:
    """Train on the dataset's training split; the adapter is written straight into the artifact store.

    With ``num_processes`` > 1 (or 0 and several GPUs) the training runs data-parallel in that many
    torchrun ranks; their metrics come back from rank 0 and only this process logs to MLflow.

    Args:
        dataset: The valid rendered dataset.
        config: The ``train`` section; its ``output_dir`` is replaced by the artifact's folder.
    """
    trainer_config = dataclasses.replace(config, output_dir=output_dir("adapter"))
    metrics = _train(config, dataset, trainer_config.output_dir)
    if active_mlflow_run():
        try:  # an MLflow outage must not throw away a finished training: ZenML deletes a failed step's outputs
            retry_transient(lambda: log_training_to_mlflow(trainer_config, metrics), what="MLflow training log")
        except Exception as exc:  # noqa: BLE001
            if not is_transient(exc):
                raise
            logger.warning(
                "MLflow unavailable (%s): training metrics not logged there; the adapter is kept and "
                "carries them in training_metrics.json",
                exc,
            )
    return TrainedAdapter(metrics["adapter_dir"])


@step(cache_policy=TRAIN_CACHE)
def train_adapters(
    dataset: RenderedDataset, config: TrainerConfig
) -> Annotated[TrainedAdapterSet, ArtifactConfig(name="adapters", artifact_type=ArtifactType.MODEL)]:
    """Train every adapter of ``train.adapters``/``train.sweep`` on one base model (one subfolder each).

    Runs as the pipeline's ``train_lora`` step; the base is loaded once, each page encoded once.

    Args:
        dataset: The valid rendered dataset.
        config: The ``train`` section with its adapters or sweep.
    """
    metrics = _train(config, dataset, output_dir("adapters"))
    if active_mlflow_run():
        try:
            retry_transient(lambda: log_adapters_to_mlflow(config, metrics), what="MLflow training log")
        except Exception as exc:  # noqa: BLE001
            if not is_transient(exc):
                raise
            logger.warning("MLflow unavailable (%s): training metrics not logged there", exc)
    return TrainedAdapterSet(metrics["adapter_dir"])
