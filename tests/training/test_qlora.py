"""QLoRA on the tiny profile: the decoder (fused experts included) is quantized, trains, saves, reloads, merges."""

import bitsandbytes as bnb
import pytest
import torch
from support.adapters import prompt_logits

from deepsynth.export.exporter import export_adapter
from deepsynth.inference import GenerationConfig, generate_with_stats, load_adapter_model
from deepsynth.models.quantization import QuantizedExperts
from deepsynth.models.vision import ocr_core
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer


@pytest.mark.parametrize(
    "bits, quant_type, layer_type",
    [(4, "nf4", bnb.nn.Linear4bit), (4, "fp4", bnb.nn.Linear4bit), (8, "nf4", bnb.nn.Linear8bitLt)],
)
def test_qlora_quantizes_the_decoder_only_and_trains(tiny_config, rendered, tmp_path, bits, quant_type, layer_type):
    config = tiny_config(
        use_qlora=True,
        qlora_bits=bits,
        qlora_type=quant_type,
        qlora_double_quant=True,
        num_epochs=4,
        output_dir=str(tmp_path / f"q{bits}{quant_type}"),
    )
    trainer = DeepSynthLoRATrainer(config)
    metrics, _ = trainer.train(rendered)
    core = ocr_core(trainer.model)
    q_proj = core.language_model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, layer_type)
    if bits == 4:
        assert q_proj.base_layer.weight.quant_state.quant_type == quant_type
        assert q_proj.base_layer.weight.quant_state.nested  # double quantization
    else:
        assert q_proj.base_layer.weight.dtype == torch.int8
    experts = core.language_model.layers[1].mlp.experts
    assert isinstance(experts, QuantizedExperts)
    assert experts.gate_up_proj_packed.dtype == (torch.uint8 if bits == 4 else torch.int8)
    quantized = (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt, QuantizedExperts)
    assert not any(isinstance(m, quantized) for m in core.vision_tower.modules())
    assert not isinstance(core.multi_modal_projector, quantized)
    losses = [loss for _, loss, _ in metrics["loss_curve"]]
    assert all(map(torch.isfinite, torch.tensor(losses)))
    assert sum(losses[-2:]) < sum(losses[:2]) - 1.0
    assert (tmp_path / f"q{bits}{quant_type}" / "adapter_model.safetensors").is_file()


def test_8bit_optimizer_trains(tiny_config, rendered, tmp_path):
    metrics, _ = DeepSynthLoRATrainer(tiny_config(optimizer="adamw_8bit", num_epochs=2)).train(rendered)
    losses = [loss for _, loss, _ in metrics["loss_curve"]]
    assert losses[-1] < losses[0]


def _experts(model):
    """The MoE layer's experts module under peft's parameter wrappers."""
    experts = ocr_core(model).language_model.layers[1].mlp.experts
    return experts.get_base_layer() if hasattr(experts, "get_base_layer") else experts


@pytest.fixture(scope="module", params=[4, 8], ids=["qlora4", "qlora8"])
def qlora_expert_adapter(request, deepsynth_home, tmp_path_factory, make_rendered):
    """An adapter trained with QLoRA on the attention/MLP projections and the fused experts."""
    from deepsynth.training.config import TrainerConfig

    out = tmp_path_factory.mktemp(f"qlora{request.param}")
    data = make_rendered(out / "data")
    config = TrainerConfig(
        model_name="tiny",
        deepsynth_home=str(deepsynth_home),
        output_dir=str(out / "adapter"),
        batch_size=2,
        num_epochs=3,
        learning_rate=1e-2,
        lora_rank=8,
        lora_alpha=16,
        lora_dropout=0.0,
        lora_target_experts=True,
        use_qlora=True,
        qlora_bits=request.param,
        max_length=256,
        max_summary_tokens=32,
        progress_bar=False,
        device="cpu",
    )
    trainer = DeepSynthLoRATrainer(config)
    metrics, _ = trainer.train(data)
    assert metrics["final_loss"] < metrics["initial_loss"]
    return out / "adapter", data


def test_qlora_expert_adapter_reloads_exactly_on_the_quantized_base(qlora_expert_adapter, deepsynth_home):
    from safetensors.torch import load_file

    adapter, data = qlora_expert_adapter
    saved = load_file(str(adapter / "adapter_model.safetensors"))
    expert_b = [k for k in saved if ".experts." in k and "lora_B" in k]
    assert expert_b and all(saved[k].abs().sum() > 0 for k in expert_b)  # the experts' LoRA trained
    quantized = load_adapter_model(adapter, home=deepsynth_home, quantized=True)  # verifies every tensor
    assert isinstance(_experts(quantized.model), QuantizedExperts)
    doc = data.documents(split="train")[0]
    first, prompt_len = prompt_logits(quantized, doc)
    again = load_adapter_model(adapter, home=deepsynth_home, quantized=True)
    assert torch.equal(prompt_logits(again, doc)[0], first)  # quantization is deterministic
    # Generation's prompt is the training prompt on the QLoRA path too.
    expected = int(first[0, prompt_len - 1].argmax())
    out = generate_with_stats(quantized, [doc], GenerationConfig(max_new_tokens=1))[0]
    assert out.token_ids == ([] if expected == quantized.tokenizer.eos_token_id else [expected])


def test_qlora_expert_adapter_loads_on_the_full_precision_base_and_merges(
    qlora_expert_adapter, deepsynth_home, tmp_path
):
    adapter, data = qlora_expert_adapter
    full = load_adapter_model(adapter, home=deepsynth_home)  # verifies every tensor
    assert not isinstance(_experts(full.model), QuantizedExperts)
    doc = data.documents(split="train")[0]
    with_adapter, _ = prompt_logits(full, doc)
    quantized, _ = prompt_logits(load_adapter_model(adapter, home=deepsynth_home, quantized=True), doc)
    assert not torch.equal(with_adapter, quantized)  # really a different (unquantized) base

    result = export_adapter(
        adapter,
        tmp_path / "merged",
        create_package=False,
        include_base_model=True,
        dataset=data.path,
        home=deepsynth_home,
    )
    merged = load_adapter_model(result.output_dir, home=deepsynth_home)
    merged_logits, _ = prompt_logits(merged, doc)
    torch.testing.assert_close(merged_logits, with_adapter, atol=1e-4, rtol=1e-4)
