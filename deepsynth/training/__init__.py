"""Training: config, LoRA presets, the LoRA/QLoRA trainer, checkpoints, feature cache, MLflow logging.

Names are imported on first use so that reading a config does not import torch or peft.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"TrainerConfig": "deepsynth.training.config", "get_lora_preset": "deepsynth.training.lora_config"}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'deepsynth.training' has no attribute {name!r}")
