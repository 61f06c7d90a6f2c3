"""The files of a trained adapter folder (the trainer writes them; export, inference and the artifact read them)."""

from __future__ import annotations

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: The full model's weights, when training ran without LoRA (``full_finetune``).
MERGED_WEIGHTS = "model.safetensors"
PROJECTOR_WEIGHTS = "projector.safetensors"
TRAINER_CONFIG = "trainer_config.json"
TRAINING_METRICS = "training_metrics.json"
TEXT_ENCODER_DIR = "text_encoder"
