import pytest
import torch
from peft import get_peft_model

from deepsynth.models.loading import load_base_model
from deepsynth.training.config import TrainerConfig
from deepsynth.training.lora_config import build_lora_config
from deepsynth.training.model_setup import build_training_model, count_parameters


def lora_params(r, fan_in, fan_out):
    return r * (fan_in + fan_out)


def test_default_targets_are_decoder_attention_and_mlp_with_a_hand_computed_count(deepsynth_home):
    model, _, _ = build_training_model(
        TrainerConfig(model_name="tiny", deepsynth_home=str(deepsynth_home)), torch.device("cpu")
    )
    r, h = 16, 64
    attention = 4 * lora_params(r, h, h)  # q, k, v, o: 64 -> 64 in both layers
    dense_mlp = 2 * lora_params(r, h, 128) + lora_params(r, 128, h)  # layer 0: gate/up 64->128, down 128->64
    shared_experts = 2 * lora_params(r, h, 32) + lora_params(r, 32, h)  # layer 1: one shared expert of width 32
    expected = 2 * attention + dense_mlp + shared_experts
    assert expected == 30208
    assert count_parameters(model)[0] == expected
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("language_model.layers" in n and "lora_" in n for n in names)
    assert not any("vision_tower" in n for n, _ in model.named_modules() if "lora" in n)


def test_fused_experts_are_reached_through_target_parameters(deepsynth_home):
    config = TrainerConfig(model_name="tiny", lora_target_experts=True, lora_dropout=0.0)
    model, _, _ = load_base_model("tiny", home=deepsynth_home)
    peft_model = get_peft_model(model, build_lora_config(config))
    expert = {n: p.numel() for n, p in peft_model.named_parameters() if p.requires_grad and ".experts." in n}
    r, experts = 16, 4
    # one LoRA pair per expert, stacked: gate_up 64 -> 2*32, down 32 -> 64
    assert sum(expert.values()) == r * experts * (64 + 64) + r * experts * (32 + 64)


@pytest.mark.parametrize("train_projector", [False, True])
def test_vision_tower_frozen_and_projector_optional(deepsynth_home, train_projector):
    config = TrainerConfig(model_name="tiny", deepsynth_home=str(deepsynth_home), train_projector=train_projector)
    model, _, _ = build_training_model(config, torch.device("cpu"))
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    assert not any(v for n, v in grads.items() if "vision_tower" in n)
    assert all(
        v == train_projector
        for n, v in grads.items()
        if "multi_modal_projector" in n or n.endswith(("image_newline", "view_separator"))
    )
