"""The files of a trained adapter folder (the trainer writes them; export, inference and the artifact read them)."""

from __future__ import annotations

import os

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: The full model's weights, when training ran without LoRA (``full_finetune``).
MERGED_WEIGHTS = "model.safetensors"
PROJECTOR_WEIGHTS = "projector.safetensors"
TRAINER_CONFIG = "trainer_config.json"
TRAINING_METRICS = "training_metrics.json"
TEXT_ENCODER_DIR = "text_encoder"
TEXT_ENCODER_META = "text_encoder.json"


def safetensors_tensor_count(path: str | os.PathLike) -> int:
    """How many tensors a safetensors file holds, read from its header (no tensor data is read).

    Raises:
        ValueError: Not a readable safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return len(list(handle.keys()))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
