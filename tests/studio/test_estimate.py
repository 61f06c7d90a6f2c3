"""The Studio's memory estimate (deepsynth.models.memory_estimate) against real quantization and real LoRA."""

from __future__ import annotations

import pytest
import torch

from deepsynth.models.memory_estimate import (
    computed_bytes,
    estimate,
    make_trainable,
    measured_bytes,
    meta_model,
    random_model,
    trainable_parameters,
)
from deepsynth.models.quantization import QuantizationSpec, quantize_decoder
from deepsynth.models.vision import ocr_core
from deepsynth.training.config import TrainerConfig
from deepsynth.training.lora_config import build_lora_config


@pytest.mark.parametrize(("bits", "double_quant"), [(None, True), (8, True), (4, True), (4, False)])
def test_computed_bytes_equal_what_a_quantized_model_stores(bits, double_quant):
    """Arithmetic on the meta model = bytes counted on the tiny model after the real quantize_decoder."""
    spec = QuantizationSpec(bits, "nf4", double_quant, torch.bfloat16) if bits else None
    real = random_model("tiny", torch.bfloat16)
    if spec is not None:
        quantize_decoder(real, ocr_core(real).language_model, spec, torch.device("cpu"))
    measured = measured_bytes(real)
    computed = computed_bytes(meta_model("tiny", torch.bfloat16), spec)
    for key in set(measured) | set(computed):
        assert computed.get(key, 0) == measured.get(key, 0), key


@pytest.mark.parametrize("experts", [False, True])
def test_trainable_parameters_on_the_meta_device_are_exact(experts):
    config = TrainerConfig(
        model_name="tiny", lora_rank=8, lora_dropout=0.0, lora_target_experts=experts, train_projector=experts
    )
    real = make_trainable(random_model("tiny", torch.float32), build_lora_config(config), config.train_projector)
    found = estimate("tiny", build_lora_config(config), dtype=torch.float32, train_projector=config.train_projector)
    assert found.trainable_params == trainable_parameters(real) > 0
    assert found.total_params == sum(p.numel() for p in real.parameters())


def test_full_fine_tuning_has_one_variant():
    found = estimate("tiny", None).to_dict()
    assert list(found["full_size"]) == ["full_ft"]
    assert found["full_size"]["full_ft"]["trainable_params"] > 2_900_000_000  # the whole decoder and LM head
