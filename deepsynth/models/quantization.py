"""bitsandbytes quantization for QLoRA: quantize the decoder, keep the frozen encoder as it is."""

from __future__ import annotations

import torch
from transformers import BitsAndBytesConfig

from deepsynth.errors import ConfigError

# Left in full precision: the vision tower and projector (8-bit breaks SAM's convolutions, and the
# encoder is frozen anyway) and the output head (quantizing it costs accuracy for little memory).
# transformers matches these from the start of the module name (or as a suffix), so prefixes must be full.
SKIP_MODULES = ["model.vision_tower", "model.multi_modal_projector", "lm_head"]


def bnb_config(bits: int, quant_type: str = "nf4", double_quant: bool = True,
               compute_dtype: torch.dtype = torch.float32) -> BitsAndBytesConfig:
    """A ``BitsAndBytesConfig`` for 4-bit (nf4/fp4, optional double quantization) or 8-bit loading.

    Args:
        bits: 4 or 8.
        quant_type: ``nf4`` or ``fp4`` (4-bit only).
        double_quant: Quantize the quantization constants too (4-bit only).
        compute_dtype: Dtype of the 4-bit matmuls.

    Returns:
        The config, with the vision tower, projector and LM head excluded from quantization.
    """
    if bits == 4:
        if quant_type not in ("nf4", "fp4"):
            raise ConfigError(f"qlora_type: {quant_type!r} is not one of ['nf4', 'fp4']")
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quant_type,
            bnb_4bit_use_double_quant=double_quant,
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=list(SKIP_MODULES),
        )
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(SKIP_MODULES))
    raise ConfigError(f"qlora_bits: {bits} is not one of [4, 8]")
