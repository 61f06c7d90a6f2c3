"""Training: config, LoRA presets, the LoRA/QLoRA trainer, checkpoints, feature cache, MLflow logging."""

from deepsynth.lazy import lazy_exports

_EXPORTS = {"TrainerConfig": "deepsynth.training.config", "get_lora_preset": "deepsynth.training.config"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
