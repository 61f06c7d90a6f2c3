"""The peft ``LoraConfig`` for DeepSeek-OCR's decoder.

Adapters go on the decoder's attention and MLP projections only (the dense first layer's MLP and
the shared experts of MoE layers); the vision tower's projections share names such as ``q_proj``,
so targets are matched by a regex anchored at ``language_model``. The routed experts are fused 3-D
parameters, reachable only through peft's ``target_parameters``. The LoRA presets live beside
:class:`TrainerConfig` and are importable from here too (their documented import path).
"""

from __future__ import annotations

import re
from typing import Any

from peft import LoraConfig

from deepsynth.training.config import PRESETS, LoraPreset, TrainerConfig, get_lora_preset

__all__ = ["PRESETS", "LoraPreset", "build_lora_config", "decoder_target_regex", "get_lora_preset"]

EXPERT_PARAMETERS = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]


def decoder_target_regex(modules: list[str]) -> str:
    """Regex (peft full-match) selecting ``modules`` inside the decoder's layers only."""
    alternatives = "|".join(re.escape(m) for m in modules)
    return rf".*language_model\.layers\.\d+\.(?:.*\.)?(?:{alternatives})"


def build_lora_config(config: TrainerConfig) -> LoraConfig:
    """peft ``LoraConfig`` for a :class:`TrainerConfig`.

    Args:
        config: The trainer config (rank, alpha, dropout, targets, experts).

    Returns:
        A causal-LM LoRA config targeting the decoder (and the fused experts if asked).
    """
    kwargs: dict[str, Any] = {}
    if config.lora_target_experts:
        kwargs["target_parameters"] = list(EXPERT_PARAMETERS)
    return LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=decoder_target_regex(config.lora_target_modules) if config.lora_target_modules else None,
        bias="none",
        task_type="CAUSAL_LM",
        **kwargs,
    )
