"""Build the trainable model: load (optionally quantized), freeze the encoder, attach LoRA."""

from __future__ import annotations

import logging

import torch
from peft import get_peft_model, prepare_model_for_kbit_training
from torch import nn

from deepsynth.models.loading import ModelSource, load_base_model
from deepsynth.models.quantization import bnb_config
from deepsynth.models.vision import ocr_core
from deepsynth.training.config import TrainerConfig
from deepsynth.training.lora_config import build_lora_config

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def projector_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The projector's weights plus the learned image-newline and view-separator embeddings."""
    core = ocr_core(model)
    return [*core.multi_modal_projector.parameters(), core.image_newline, core.view_separator]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (a 4-bit weight counts its packed elements)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def build_training_model(config: TrainerConfig, device: torch.device) -> tuple[nn.Module, object, ModelSource]:
    """Load the base model and make exactly the configured parts trainable.

    The vision tower is always frozen; the projector only with ``train_projector``; LoRA adapters
    go on the decoder (``use_lora``), otherwise the whole decoder and LM head train.

    Args:
        config: The trainer config.
        device: Target device.

    Returns:
        ``(model, tokenizer, source)``.
    """
    quant = None
    if config.use_qlora:
        quant = bnb_config(config.qlora_bits, config.qlora_type, config.qlora_double_quant,
                           compute_dtype=DTYPES[config.model_dtype])
    device_map = {"": device.index or 0} if (quant is not None and device.type == "cuda") else None
    model, tokenizer, source = load_base_model(
        config.model_name, config.model_revision, dtype=DTYPES[config.model_dtype],
        quantization_config=quant, device_map=device_map, home=config.deepsynth_home,
    )
    if quant is None:
        model.to(device)
    model.requires_grad_(False)
    ckpt_kwargs = {"use_reentrant": False}
    if config.use_qlora:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs=ckpt_kwargs
        )
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
    if config.use_lora:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)  # identical adapter init on every rank and every resume
            model = get_peft_model(model, build_lora_config(config))
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
