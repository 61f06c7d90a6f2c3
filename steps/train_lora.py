"""Step: fine-tune DeepSeek-OCR's decoder with LoRA/QLoRA on the valid rendered dataset."""

from __future__ import annotations

from typing import Annotated, Any

from zenml import ArtifactConfig, step
from zenml.enums import ArtifactType

from deepsynth.adapters import TrainedAdapter
from deepsynth.data.rendered import RenderedDataset
from deepsynth.training.config import TrainerConfig
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer
from deepsynth.training.mlflow_logging import log_training_to_mlflow
from steps.common import active_mlflow_run, output_dir


@step(enable_cache=False)
def train_lora(
    dataset: RenderedDataset, config: dict[str, Any]
) -> Annotated[TrainedAdapter, ArtifactConfig(name="adapter", artifact_type=ArtifactType.MODEL)]:
    """Train on the dataset's training split; the adapter is written straight into the artifact store.

    Args:
        dataset: The valid rendered dataset.
        config: The ``train`` section (:class:`TrainerConfig`); ``output_dir`` is the artifact's folder.
    """
    trainer_config = TrainerConfig.from_dict({**config, "output_dir": output_dir("adapter")}, source="train")
    metrics, _checkpoints = DeepSynthLoRATrainer(trainer_config).train(dataset)
    if active_mlflow_run():
        log_training_to_mlflow(trainer_config, metrics)
    return TrainedAdapter(metrics["adapter_dir"])
