"""Build the trainable model: load (optionally quantized), freeze the encoder, attach LoRA."""

from __future__ import annotations

import logging

import torch
from peft import get_peft_model
from torch import nn

from deepsynth.models.dtypes import DTYPES
from deepsynth.models.loading import ModelSource, load_base_model
from deepsynth.models.quantization import logical_numel, quantization_from_settings
from deepsynth.models.vision import ocr_core
from deepsynth.training.config import TrainerConfig
from deepsynth.training.lora_config import build_lora_config

logger = logging.getLogger(__name__)


def projector_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The projector's weights plus the learned image-newline and view-separator embeddings."""
    core = ocr_core(model)
    return [*core.multi_modal_projector.parameters(), core.image_newline, core.view_separator]


def count_parameters(*modules: nn.Module | None) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts over ``modules`` (``None`` entries are skipped).

    Quantized weights count their logical size (a 4-bit weight's packed bytes hold two values).
    """
    trainable = total = 0
    for module in filter(None, modules):
        for p in module.parameters():
            n = logical_numel(p)
            total += n
            trainable += n if p.requires_grad else 0
    return trainable, total


def build_training_model(
    config: TrainerConfig, device: torch.device, adapter_name: str = "default"
) -> tuple[nn.Module, object, ModelSource]:
    """Load the base model and make exactly the configured parts trainable.

    The vision tower is always frozen; the projector only with ``train_projector``; LoRA adapters
    go on the decoder (``use_lora``), otherwise the whole decoder and LM head train. With
    ``use_qlora`` the decoder (fused experts included) is quantized layer by layer on ``device``.

    Args:
        config: The trainer config.
        device: Target device.
        adapter_name: The peft name of the LoRA adapter attached.

    Returns:
        ``(model, tokenizer, source)``.
    """
    dtype = DTYPES[config.model_dtype]
    model, tokenizer, source = load_base_model(
        config.model_name,
        config.model_revision,
        dtype=dtype,
        quantization=quantization_from_settings(config.to_dict()),
        device=device,
        home=config.deepsynth_home,
    )
    model.requires_grad_(False)
    if config.gradient_checkpointing or config.use_qlora:
        # Frozen weights keep their load dtype: no blanket float32 cast (peft's
        # prepare_model_for_kbit_training would hold every unquantized weight in float32).
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if config.use_lora:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)  # identical adapter init on every rank and every resume
            model = get_peft_model(model, build_lora_config(config), adapter_name=adapter_name)
    else:
        core = ocr_core(model)
        core.language_model.requires_grad_(True)
        model.lm_head.requires_grad_(True)
    for p in projector_parameters(model):
        p.requires_grad_(config.train_projector)
    ocr_core(model).vision_tower.eval()
    trainable, total = count_parameters(model)
    logger.info("trainable parameters: %d of %d (%.4f%%)", trainable, total, 100.0 * trainable / max(total, 1))
    return model, tokenizer, source
