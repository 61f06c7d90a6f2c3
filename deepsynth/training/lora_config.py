"""LoRA presets and the peft ``LoraConfig`` for DeepSeek-OCR's decoder.

Adapters go on the decoder's attention and MLP projections only (the dense first layer's MLP and
the shared experts of MoE layers); the vision tower's projections share names such as ``q_proj``,
so targets are matched by a regex anchored at ``language_model``. The routed experts are fused 3-D
parameters, reachable only through peft's ``target_parameters``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from peft import LoraConfig

from deepsynth.errors import ConfigError

if TYPE_CHECKING:
    from deepsynth.training.config import TrainerConfig

EXPERT_PARAMETERS = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]


@dataclass(frozen=True)
class LoraPreset:
    """A named LoRA (and optionally QLoRA) setting.

    Attributes:
        name: Preset name.
        rank: LoRA rank r.
        alpha: LoRA alpha.
        dropout: LoRA dropout.
        use_qlora: Quantize the decoder.
        qlora_bits: 4 or 8.
        qlora_type: nf4 or fp4 (4-bit).
        qlora_double_quant: Double quantization (4-bit).
    """

    name: str
    rank: int
    alpha: int
    dropout: float
    use_qlora: bool = False
    qlora_bits: int = 4
    qlora_type: str = "nf4"
    qlora_double_quant: bool = True

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict view (what the seed's ``presets`` table shows)."""
        return asdict(self)

    def apply(self, config: "TrainerConfig") -> None:
        """Write this preset's values into a :class:`TrainerConfig`."""
        config.lora_rank, config.lora_alpha, config.lora_dropout = self.rank, self.alpha, self.dropout
        config.use_qlora = self.use_qlora
        if self.use_qlora:
            config.qlora_bits, config.qlora_type = self.qlora_bits, self.qlora_type  # type: ignore[assignment]
            config.qlora_double_quant = self.qlora_double_quant


PRESETS: dict[str, LoraPreset] = {
    "minimal": LoraPreset("minimal", 4, 8, 0.05),
    "standard": LoraPreset("standard", 16, 32, 0.05),
    "high_capacity": LoraPreset("high_capacity", 64, 128, 0.1),
    "qlora_4bit": LoraPreset("qlora_4bit", 16, 32, 0.05, use_qlora=True, qlora_bits=4),
    "qlora_8bit": LoraPreset("qlora_8bit", 16, 32, 0.05, use_qlora=True, qlora_bits=8),
}


def get_lora_preset(name: str) -> LoraPreset:
    """The preset called ``name`` (minimal, standard, high_capacity, qlora_4bit, qlora_8bit).

    Raises:
        ConfigError: Unknown name.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"lora_preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def decoder_target_regex(modules: list[str]) -> str:
    """Regex (peft full-match) selecting ``modules`` inside the decoder's layers only."""
    alternatives = "|".join(re.escape(m) for m in modules)
    return rf".*language_model\.layers\.\d+\.(?:.*\.)?(?:{alternatives})"


def build_lora_config(config: "TrainerConfig") -> LoraConfig:
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
