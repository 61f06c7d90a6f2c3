"""Weight memory of DeepSeek-OCR by part and dtype, and trainable parameters, for full FT, LoRA and QLoRA.

One setup serves two callers: ``benchmarks.memory`` builds the full-size model with real (random) bf16
weights on the CPU, quantizes its decoder with :func:`~deepsynth.models.quantization.quantize_decoder`
and counts the bytes every tensor stores (:func:`measured_bytes`); the Studio's estimate builds the same
model on the ``meta`` device (no memory, about a second) and computes the same table by arithmetic
(:func:`estimate`). Trainable parameters are exact either way (the peft model is built); the quantized
parts of an estimate are computed from bitsandbytes' storage formats and are marked as estimates.

The LoRA settings come in as a peft ``LoraConfig`` (the training layer builds it from its config), so
this module stays below ``deepsynth.training``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from deepsynth.errors import ConfigError
from deepsynth.models.architecture import (
    DEEPSEEK_OCR,
    DEEPSEEK_OCR_2,
    TINY,
    deepseek_ocr2_config,
    deepseek_ocr_config,
    tiny_config,
)
from deepsynth.models.quantization import EXPERT_WEIGHTS, QuantizationSpec, is_fused_experts, model_part, weight_bytes
from deepsynth.models.vision import ocr_core

if TYPE_CHECKING:
    from peft import LoraConfig

GB = 1e9
PARTS = ("experts", "vision", "decoder", "lm_head", "lora")
#: bitsandbytes' 4-bit block size, and the number of 4-bit blocks whose scales double quantization groups.
BLOCK_4BIT = 64
BLOCKS_PER_NESTED = 256
#: Variants at full size, as the benchmark and the Studio compare them (rank and targets from the caller).
VARIANTS = {"lora": None, "qlora_8bit": 8, "qlora_4bit": 4}


def architecture(model_name: str) -> tuple[Any, type[nn.Module]]:
    """The config and class of a named model (``tiny`` or a hub name; never a directory read from a request).

    Raises:
        ConfigError: Any other name (exit code 2).
    """
    from transformers import DeepseekOcr2ForConditionalGeneration, UnlimitedOcrForConditionalGeneration

    if model_name == TINY:
        return tiny_config(), UnlimitedOcrForConditionalGeneration
    if model_name == DEEPSEEK_OCR:
        return deepseek_ocr_config(), UnlimitedOcrForConditionalGeneration
    if model_name == DEEPSEEK_OCR_2:
        return deepseek_ocr2_config(), DeepseekOcr2ForConditionalGeneration
    raise ConfigError(
        f"train.model_name: the estimate knows {TINY!r}, {DEEPSEEK_OCR!r} and {DEEPSEEK_OCR_2!r}, not {model_name!r}",
        key="train.model_name",
    )


def meta_model(model_name: str, dtype: torch.dtype) -> nn.Module:
    """The model's architecture on the ``meta`` device in ``dtype``: shapes without storage."""
    config, cls = architecture(model_name)
    with torch.device("meta"):
        model = cls(config)
    return model.to(dtype)


def random_model(model_name: str, dtype: torch.dtype, seed: int = 0) -> nn.Module:
    """The architecture with real N(0, 0.02) weights on the CPU (allocated without the slow default init)."""
    model = meta_model(model_name, dtype).to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.normal_(0.0, 0.02, generator=generator)
    return model


def make_trainable(model: nn.Module, lora: LoraConfig | None, train_projector: bool = False) -> nn.Module:
    """Freeze ``model`` and make trainable what training does: LoRA (or the whole decoder and LM head), the projector.

    The same choices as ``deepsynth.training.model_setup.build_training_model``; returns the peft model
    when ``lora`` is given.
    """
    model.requires_grad_(False)
    if lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, lora)
    else:
        ocr_core(model).language_model.requires_grad_(True)
        model.lm_head.requires_grad_(True)
    core = ocr_core(model)
    for p in [*core.multi_modal_projector.parameters(), core.image_newline, core.view_separator]:
        p.requires_grad_(train_projector)
    return model


def trainable_parameters(model: nn.Module) -> int:
    """Parameters that receive gradients (exact, also on the meta device)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def quantized_linear_bytes(weight_shape: torch.Size, spec: QuantizationSpec) -> dict[str, int]:
    """Bytes a bitsandbytes ``Linear4bit``/``Linear8bitLt`` weight stores, by dtype (code tables left out)."""
    n = math.prod(weight_shape)
    if spec.bits == 8:
        return {"int8": n, "float32": 4 * weight_shape[0]}  # one absmax scale (SCB) per output row
    return _four_bit(n, spec, offset=False)


def quantized_experts_bytes(weight_shape: torch.Size, spec: QuantizationSpec) -> dict[str, int]:
    """Bytes a :class:`~deepsynth.models.quantization.QuantizedExperts` tensor stores, by dtype."""
    n = math.prod(weight_shape)
    if spec.bits == 8:
        return {"int8": n, "float32": 4 * (n // weight_shape[-1])}  # one scale per row of each expert
    return _four_bit(n, spec, offset=True)


def _four_bit(n: int, spec: QuantizationSpec, offset: bool) -> dict[str, int]:
    """Packed values, block scales and the tensor's own code tables (16 float32 values; 256 more when nested).

    A nested state's float32 offset is stored per tensor for the experts; ``Linear4bit`` keeps it as a
    Python float.
    """
    blocks = math.ceil(n / BLOCK_4BIT)
    if spec.double_quant:  # the block scales are quantized to 8 bits, with a float32 scale per 256 of them
        tables = 4 * (16 + 256) + (4 if offset else 0)
        return {"uint8": math.ceil(n / 2) + blocks, "float32": 4 * math.ceil(blocks / BLOCKS_PER_NESTED) + tables}
    return {"uint8": math.ceil(n / 2), "float32": 4 * blocks + 4 * 16}


def _quantized_tensors(model: nn.Module, spec: QuantizationSpec) -> dict[int, dict[str, int]]:
    """id(tensor) → stored bytes by dtype for every tensor ``quantize_decoder`` would quantize."""
    found: dict[int, dict[str, int]] = {}
    for layer in ocr_core(model).language_model.layers:
        for module in layer.modules():
            if isinstance(module, nn.Linear):
                found[id(module.weight)] = quantized_linear_bytes(module.weight.shape, spec)
                if module.bias is not None:
                    found[id(module.bias)] = {
                        _dtype(spec.compute_dtype): module.bias.numel() * _itemsize(spec.compute_dtype)
                    }
            elif is_fused_experts(module):
                for name in EXPERT_WEIGHTS:
                    # a placeholder of one element keeps the parameter's name and shape for peft
                    stored = quantized_experts_bytes(module._parameters[name].shape, spec)
                    found[id(module._parameters[name])] = {
                        **stored,
                        _dtype(spec.compute_dtype): _itemsize(spec.compute_dtype),
                    }
    return found


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def computed_bytes(model: nn.Module, spec: QuantizationSpec | None = None) -> dict[tuple[str, str], int]:
    """Bytes by ``(part, dtype)`` by arithmetic on shapes (a meta model), as if ``spec`` quantized the decoder."""
    quantized = _quantized_tensors(model, spec) if spec is not None else {}
    totals: dict[tuple[str, str], int] = {}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        stored = quantized.get(id(tensor)) or {_dtype(tensor.dtype): tensor.numel() * tensor.element_size()}
        for dtype, n in stored.items():
            key = (model_part(name), dtype)
            totals[key] = totals.get(key, 0) + n
    return totals


def measured_bytes(model: nn.Module) -> dict[tuple[str, str], int]:
    """Bytes by ``(part, dtype)`` that a materialized model's tensors store (:func:`weight_bytes`)."""
    return weight_bytes(model)


def table(by_part: dict[tuple[str, str], int], trainable: int) -> dict[str, Any]:
    """The JSON figures of one variant: GB by part and dtype, total, trainable parameters, AdamW state."""
    gb: dict[str, dict[str, float]] = {}
    for (part, dtype), n in sorted(by_part.items()):
        gb.setdefault(part, {})[dtype] = round(n / GB, 4)
    total = sum(by_part.values()) / GB
    frozen_fp32 = sum(n for (part, dtype), n in by_part.items() if part != "lora" and dtype == "float32") / GB
    return {
        "gb_by_part_and_dtype": gb,
        "total_gb": round(total, 3),
        "trainable_params": trainable,
        "frozen_float32_gb": round(frozen_fp32, 4),
        "adamw_state_gb_fp32": round(8 * trainable / GB, 3),
    }


@functools.lru_cache(maxsize=8)
def frozen_full_size(
    dtype: torch.dtype, quant_type: str, double_quant: bool, with_lora: bool
) -> dict[str, tuple[tuple[tuple[str, str], int], ...]]:
    """Bytes of the full-size model's own weights per variant (LoRA, QLoRA-8, QLoRA-4; full FT without LoRA)."""
    base = meta_model(DEEPSEEK_OCR, dtype)
    variants = VARIANTS if with_lora else {"full_ft": None}
    return {
        variant: tuple(
            computed_bytes(base, QuantizationSpec(bits, quant_type, double_quant, dtype) if bits else None).items()
        )
        for variant, bits in variants.items()
    }


@dataclass(frozen=True)
class Estimate:
    """Trainable parameters of the configured model and weight memory of the full-size model per variant.

    Attributes:
        model_name: The configured model.
        trainable_params: Exact count for the configured model and settings.
        total_params: All parameters of the configured model.
        full_size: ``lora``, ``qlora_8bit``, ``qlora_4bit`` (``full_ft`` without LoRA) → :func:`table` of the
            full-size model.
        estimated: Which figures are computed from storage formats rather than counted.
    """

    model_name: str
    trainable_params: int
    total_params: int
    full_size: dict[str, dict[str, Any]]
    estimated: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON view."""
        return {
            "model_name": self.model_name,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "full_size_model": DEEPSEEK_OCR,
            "full_size": self.full_size,
            "estimated": self.estimated,
        }


def estimate(
    model_name: str,
    lora: LoraConfig | None,
    *,
    dtype: torch.dtype = torch.bfloat16,
    train_projector: bool = False,
    quant_type: str = "nf4",
    double_quant: bool = True,
) -> Estimate:
    """Trainable parameters of ``model_name`` (exact) and the full-size weight memory for LoRA, QLoRA-8, QLoRA-4.

    Both are built on the meta device: nothing is allocated or downloaded. The full-size figures are
    for DeepSeek-OCR v1 in ``dtype`` with the same LoRA settings (or full fine-tuning when ``lora`` is None).

    Raises:
        ConfigError: An unknown model name.
    """
    import copy

    model = make_trainable(meta_model(model_name, dtype), copy.deepcopy(lora), train_projector)
    trainable, total = trainable_parameters(model), sum(p.numel() for p in model.parameters())
    full = make_trainable(meta_model(DEEPSEEK_OCR, dtype), copy.deepcopy(lora), train_projector)
    lora_bytes = {k: n for k, n in computed_bytes(full).items() if k[0] == "lora"}
    full_size = {
        variant: table({**dict(frozen), **lora_bytes}, trainable_parameters(full))
        for variant, frozen in frozen_full_size(dtype, quant_type, double_quant, lora is not None).items()
    }
    estimated = [
        "qlora_8bit and qlora_4bit: decoder and experts bytes from bitsandbytes' storage formats (int8 + a float32 "
        "scale per row; 4-bit: two values a byte + one scale per 64-value block, double-quantized)",
        "weights only: activations, gradients and optimizer state come on top (adamw_state_gb_fp32 is 8 bytes per "
        "trainable parameter)",
    ]
    return Estimate(model_name, trainable, total, full_size, estimated)
