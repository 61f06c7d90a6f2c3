"""Training: config, LoRA presets, the LoRA/QLoRA trainer, checkpoints, feature cache, MLflow logging."""

from deepsynth.training.config import TrainerConfig
from deepsynth.training.lora_config import get_lora_preset

__all__ = ["TrainerConfig", "get_lora_preset"]
