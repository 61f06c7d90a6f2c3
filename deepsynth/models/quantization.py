"""QLoRA quantization of DeepSeek-OCR's decoder, layer by layer, fused MoE experts included.

bitsandbytes' transformers integration replaces ``nn.Linear`` modules only. DeepSeek-OCR keeps
2.5B of its 3.3B parameters in fused 3-D expert tensors (``mlp.experts.gate_up_proj`` and
``down_proj``), which it would leave in the load dtype. :func:`quantize_decoder` therefore walks the
decoder one layer at a time: each ``nn.Linear`` becomes a bitsandbytes ``Linear4bit`` /
``Linear8bitLt``, each experts module becomes a :class:`QuantizedExperts` that stores its tensors in
4 bits (bitsandbytes nf4/fp4, double quantization as configured) or 8 bits (int8 with one scale per
expert row) and dequantizes them for the duration of its forward pass. Weights are quantized as they
reach the device, so the decoder's full-precision expert stack is never on the device at once. The
vision tower, projector, embeddings, norms, router and LM head stay in the load dtype.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from deepsynth.errors import ConfigError
from deepsynth.models.dtypes import DTYPES

EXPERT_WEIGHTS = ("gate_up_proj", "down_proj")
QUANT_TYPES = ("nf4", "fp4")


@dataclass(frozen=True)
class QuantizationSpec:
    """How the decoder is quantized.

    Attributes:
        bits: 4 or 8.
        quant_type: ``nf4`` or ``fp4`` (4-bit only).
        double_quant: Quantize the 4-bit block scales too.
        compute_dtype: Dtype the weights are dequantized to for matmuls.
    """

    bits: int = 4
    quant_type: str = "nf4"
    double_quant: bool = True
    compute_dtype: torch.dtype = torch.bfloat16

    def __post_init__(self) -> None:
        if self.bits not in (4, 8):
            raise ConfigError(f"qlora_bits: {self.bits} is not one of [4, 8]")
        if self.bits == 4 and self.quant_type not in QUANT_TYPES:
            raise ConfigError(f"qlora_type: {self.quant_type!r} is not one of {list(QUANT_TYPES)}")


def quantization_from_settings(settings: Mapping[str, Any]) -> QuantizationSpec | None:
    """The quantization a training run's settings ask for (``use_qlora``, ``qlora_*``, ``model_dtype``).

    Args:
        settings: A ``TrainerConfig`` as a dict, or the ``trainer_config.json`` saved beside an adapter.

    Returns:
        The spec, or ``None`` when the run did not use QLoRA.
    """
    if not settings.get("use_qlora"):
        return None
    return QuantizationSpec(
        int(settings.get("qlora_bits", 4)),
        settings.get("qlora_type", "nf4"),
        bool(settings.get("qlora_double_quant", True)),
        DTYPES[settings.get("model_dtype") or "float32"],
    )


class _Packed4bit:
    """One tensor in bitsandbytes 4-bit blocks (the packed bytes live in a buffer of the owning module)."""

    def __init__(self, weight: torch.Tensor, spec: QuantizationSpec):
        from bitsandbytes.functional import quantize_4bit

        self.data, self.state = quantize_4bit(weight, compress_statistics=spec.double_quant, quant_type=spec.quant_type)

    def dequantize(self, data: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        from bitsandbytes.functional import dequantize_4bit

        return dequantize_4bit(data, self.state).to(dtype)

    def to(self, device: torch.device) -> None:
        self.state.to(device)

    def tensors(self) -> list[torch.Tensor]:
        state = self.state
        nested = [state.state2.absmax, state.state2.code] if state.nested else []
        return [t for t in (state.absmax, state.code, state.offset, *nested) if isinstance(t, torch.Tensor)]


class _PackedInt8:
    """One tensor in int8 with an absmax scale per row of each expert (the last dimension shares it)."""

    def __init__(self, weight: torch.Tensor, spec: QuantizationSpec):
        scales, rows = [], []
        for expert in weight:  # one expert at a time keeps the float32 temporaries small
            scale = expert.float().abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / 127.0
            rows.append(torch.round(expert.float() / scale).clamp_(-127, 127).to(torch.int8))
            scales.append(scale)
        self.data, self.scale = torch.stack(rows), torch.stack(scales)

    def dequantize(self, data: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return data.to(dtype) * self.scale.to(dtype)

    def to(self, device: torch.device) -> None:
        self.scale = self.scale.to(device)

    def tensors(self) -> list[torch.Tensor]:
        return [self.scale]


class QuantizedExperts(nn.Module):
    """Mixin for a fused-experts module whose weight tensors are stored quantized.

    ``gate_up_proj`` and ``down_proj`` stay registered as parameters of the right shape and
    compute dtype, so peft's ``target_parameters`` finds them, but they are zero tensors with a
    single element of storage. During ``forward`` the dequantized weights stand in for them (also
    beneath a LoRA parametrization peft registers), and the original experts code runs unchanged.
    Made by :meth:`convert` (which :func:`quantize_decoder` calls), never instantiated directly.
    """

    _packed: dict

    @classmethod
    def convert(cls, experts: nn.Module, spec: QuantizationSpec, device: torch.device) -> nn.Module:
        """Quantize ``experts`` in place on ``device`` and give it this class's behaviour."""
        packer = _Packed4bit if spec.bits == 4 else _PackedInt8
        experts.__class__ = _quantized_class(type(experts))
        experts._packed, experts._compute_dtype = {}, spec.compute_dtype
        for name in EXPERT_WEIGHTS:
            weight = experts._parameters.pop(name)
            shape = weight.shape
            packed = packer(weight.data.to(device, spec.compute_dtype), spec)
            del weight
            experts.register_buffer(f"{name}_packed", packed.data, persistent=False)
            experts._packed[name] = packed
            experts._parameters[name] = _placeholder(shape, spec.compute_dtype, device)
        return experts

    def dequantized(self, name: str) -> torch.Tensor:
        """The full-precision value of ``name`` (a new tensor in the compute dtype)."""
        return self._packed[name].dequantize(getattr(self, f"{name}_packed"), self._compute_dtype)

    @contextlib.contextmanager
    def _weights_dequantized(self) -> Iterator[None]:
        holders = [
            (self.parametrizations[name], "original") if parametrize.is_parametrized(self, name) else (self, name)
            for name in EXPERT_WEIGHTS
        ]
        saved = [holder._parameters[key] for holder, key in holders]
        try:
            for (holder, key), name in zip(holders, EXPERT_WEIGHTS):
                holder._parameters[key] = nn.Parameter(self.dequantized(name), requires_grad=False)
            yield
        finally:
            for (holder, key), placeholder in zip(holders, saved):
                holder._parameters[key] = placeholder

    def forward(self, *args, **kwargs):  # noqa: D102 - the wrapped experts' forward
        with self._weights_dequantized():
            return super().forward(*args, **kwargs)

    def _apply(self, fn, recurse=True):
        placeholders = {name: self._parameters.pop(name) for name in EXPERT_WEIGHTS}
        super()._apply(fn, recurse)
        for name, old in placeholders.items():
            probe = fn(torch.zeros((), dtype=old.dtype, device=old.device))
            self._parameters[name] = nn.Parameter(probe.expand(old.shape), requires_grad=False)
            self._packed[name].to(probe.device)
            self._compute_dtype = probe.dtype
        return self

    def quantization_tensors(self) -> list[torch.Tensor]:
        """Tensors of the quantization state that are neither parameters nor buffers (block scales)."""
        return [t for packed in self._packed.values() for t in packed.tensors()]


_CLASSES: dict[type, type] = {}


def _quantized_class(base: type) -> type:
    if issubclass(base, QuantizedExperts):
        raise ValueError(f"{base.__name__} is already quantized")
    if base not in _CLASSES:
        _CLASSES[base] = type(f"Quantized{base.__name__}", (QuantizedExperts, base), {})
    return _CLASSES[base]


def _placeholder(shape: torch.Size, dtype: torch.dtype, device: torch.device) -> nn.Parameter:
    return nn.Parameter(torch.zeros((), dtype=dtype, device=device).expand(shape), requires_grad=False)


def is_fused_experts(module: nn.Module) -> bool:
    """True for a module holding fused MoE expert weights (every :data:`EXPERT_WEIGHTS` a 3-D parameter)."""
    return all(
        isinstance(module._parameters.get(name), nn.Parameter) and module._parameters[name].dim() == 3
        for name in EXPERT_WEIGHTS
    )


def _quantized_linear(linear: nn.Linear, spec: QuantizationSpec, device: torch.device) -> nn.Module:
    """A bitsandbytes layer holding ``linear``'s weights, quantized as they move to ``device``."""
    import bitsandbytes as bnb  # only QLoRA runs load it (its import probes for CPU kernels)

    weight = linear.weight.data
    has_bias = linear.bias is not None
    if spec.bits == 4:
        layer = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=has_bias,
            device="meta",
            compute_dtype=spec.compute_dtype,
            compress_statistics=spec.double_quant,
            quant_type=spec.quant_type,
        )
        layer.weight = bnb.nn.Params4bit(
            weight.to("cpu", spec.compute_dtype),
            requires_grad=False,
            compress_statistics=spec.double_quant,
            quant_type=spec.quant_type,
            module=layer,
        )
        # bitsandbytes repacks 4-bit weights for its CPU inference kernel in eval mode, which fails on
        # layers narrower than a quantization block: keep the layout training used.
        layer.support_avx512bf16_for_cpu = False
    else:
        layer = bnb.nn.Linear8bitLt(
            linear.in_features, linear.out_features, bias=has_bias, has_fp16_weights=False, threshold=6.0, device="meta"
        )
        layer.weight = bnb.nn.Int8Params(
            weight.to("cpu", spec.compute_dtype), requires_grad=False, has_fp16_weights=False
        )
    if has_bias:
        layer.bias = nn.Parameter(linear.bias.data.to(spec.compute_dtype), requires_grad=False)
    return layer.to(device)


def quantize_decoder(model: nn.Module, decoder: nn.Module, spec: QuantizationSpec, device: torch.device) -> None:
    """Quantize ``decoder``'s layers in place, one layer at a time, and move the whole model to ``device``.

    Args:
        model: The ``*ForConditionalGeneration`` model (still on the CPU).
        decoder: Its language model (the module with ``layers``).
        spec: Bits, data type, double quantization and compute dtype.
        device: Where the model trains; quantization happens there.
    """
    for layer in decoder.layers:
        for name, module in list(layer.named_modules()):
            parent_name, _, child = name.rpartition(".")
            parent = layer.get_submodule(parent_name) if parent_name else layer
            if isinstance(module, nn.Linear):
                setattr(parent, child, _quantized_linear(module, spec, device))
            elif is_fused_experts(module):
                QuantizedExperts.convert(module, spec, device)
        layer.to(device)
    model.to(device)
    setattr(model, f"is_loaded_in_{spec.bits}bit", True)  # peft then wraps the bitsandbytes layers


def logical_numel(p: torch.Tensor) -> int:
    """Number of values a weight represents (a 4-bit weight's packed bytes hold two each)."""
    state = getattr(p, "quant_state", None)
    return math.prod(state.shape) if getattr(state, "shape", None) is not None else p.numel()


def weight_bytes(module: nn.Module) -> dict[tuple[str, str], int]:
    """Bytes of weights actually stored, by ``(part, dtype)``; shared storage is counted once.

    Parts are the top-level parameter groups of DeepSeek-OCR: ``experts`` (fused routed experts),
    ``vision`` (vision tower and projector), ``lm_head``, ``lora`` (adapter weights) and
    ``decoder`` (everything else). Quantization state (block scales) counts with its tensor's part.
    """
    seen: set[int] = set()
    totals: dict[tuple[str, str], int] = {}

    def add(name: str, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        if storage.data_ptr() in seen and storage.nbytes():
            return
        seen.add(storage.data_ptr())
        key = (model_part(name), str(tensor.dtype).removeprefix("torch."))
        totals[key] = totals.get(key, 0) + storage.nbytes()

    for prefix, sub in module.named_modules():
        for name, tensor in [*sub.named_parameters(recurse=False), *sub.named_buffers(recurse=False)]:
            add(f"{prefix}.{name}", tensor)
        if isinstance(sub, QuantizedExperts):
            for tensor in sub.quantization_tensors():
                add(f"{prefix}.gate_up_proj", tensor)
        weight = getattr(sub, "weight", None)
        state = getattr(weight, "quant_state", None)
        if type(weight).__name__ == "Params4bit" and state is not None:
            for tensor in (
                state.absmax,
                state.code,
                *((state.state2.absmax, state.state2.code) if state.nested else ()),
            ):
                add(f"{prefix}.weight", tensor)
        scales = getattr(weight, "SCB", None)
        if isinstance(scales, torch.Tensor):
            add(f"{prefix}.weight", scales)
    return totals


def model_part(name: str) -> str:
    """The part of the model a parameter name belongs to: lora, experts, vision, lm_head or decoder."""
    if "lora_" in name:
        return "lora"
    if ".experts." in name or name.split(".")[-1].startswith(EXPERT_WEIGHTS):
        return "experts" if "shared_experts" not in name else "decoder"
    if "vision_tower" in name or "multi_modal_projector" in name or "image_newline" in name or "view_separator" in name:
        return "vision"
    if "lm_head" in name:
        return "lm_head"
    return "decoder"
