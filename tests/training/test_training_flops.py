"""The MFU numerator: decoder training FLOPs per input position and per predicted position."""

import pytest
import torch

from deepsynth.models.vision import ocr_core, unwrap_model
from deepsynth.training.metrics import decoder_training_flops, measure_peak_flops
from deepsynth.training.model_setup import build_training_model

CPU = torch.device("cpu")


def test_frozen_weights_cost_4_trained_6_and_packed_4bit_weights_their_full_size(tiny_config):
    lora, _, _ = build_training_model(tiny_config(), CPU)
    body, head = decoder_training_flops(lora)
    lm_head = unwrap_model(lora).lm_head.weight
    assert not lm_head.requires_grad and head == 4 * lm_head.numel()

    q4, _, _ = build_training_model(tiny_config(use_qlora=True, qlora_bits=4), CPU)
    packed = ocr_core(q4).language_model.layers[0].self_attn.q_proj.base_layer.weight
    assert packed.numel() * 2 == ocr_core(lora).language_model.layers[0].self_attn.q_proj.base_layer.weight.numel()
    assert decoder_training_flops(q4) == pytest.approx((body, head))

    weight = ocr_core(lora).language_model.layers[0].self_attn.q_proj.base_layer.weight
    weight.requires_grad_(True)  # training it adds its weight gradient: 2 FLOPs per parameter and position
    assert decoder_training_flops(lora)[0] == pytest.approx(body + 2 * weight.numel())


def test_measured_peak_is_a_plausible_cpu_matmul_rate():
    flops = measure_peak_flops(CPU, seconds=0.2, size=256)
    assert 1e8 < flops < 1e13
