import bitsandbytes as bnb
import pytest
import torch

from deepsynth.models.vision import ocr_core
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer


@pytest.mark.parametrize(
    "bits, quant_type, layer_type",
    [(4, "nf4", bnb.nn.Linear4bit), (4, "fp4", bnb.nn.Linear4bit), (8, "nf4", bnb.nn.Linear8bitLt)],
)
def test_qlora_quantizes_the_decoder_only_and_trains(tiny_config, rendered, tmp_path, bits, quant_type, layer_type):
    config = tiny_config(use_qlora=True, qlora_bits=bits, qlora_type=quant_type, qlora_double_quant=True,
                         num_epochs=4, output_dir=str(tmp_path / f"q{bits}{quant_type}"))
    trainer = DeepSynthLoRATrainer(config)
    metrics, _ = trainer.train(rendered)
    core = ocr_core(trainer.model)
    q_proj = core.language_model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, layer_type)
    quant = trainer.model.get_base_model().config.quantization_config
    if bits == 4:
        assert q_proj.base_layer.weight.quant_state.quant_type == quant_type
        assert quant.bnb_4bit_use_double_quant and quant.bnb_4bit_quant_type == quant_type
    else:
        assert q_proj.base_layer.weight.dtype == torch.int8
    quantized = (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
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
