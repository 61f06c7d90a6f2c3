"""peft imports and uses bitsandbytes only once the process imported it (deepsynth.lazy): a plain LoRA
model is built without it, and QLoRA still gets bitsandbytes' LoRA layers."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from deepsynth.models.loading import build_tiny_model, tiny_model_dir
    from deepsynth.training.config import TrainerConfig
    from deepsynth.training.model_setup import build_training_model  # imports peft

    assert "peft" in sys.modules
    assert "bitsandbytes" not in sys.modules, "importing peft imported bitsandbytes"
    home = sys.argv[1]
    build_tiny_model(tiny_model_dir(home))
    settings = dict(model_name="tiny", deepsynth_home=home, output_dir=home + "/out", device="cpu",
                    lora_rank=4, lora_alpha=8, progress_bar=False)
    path = "base_model.model.model.language_model.layers.0.self_attn.q_proj"

    model, _, _ = build_training_model(TrainerConfig(**settings), torch.device("cpu"))
    layer = model.get_submodule(path)
    print(type(layer).__module__, type(layer).__name__)
    assert "bitsandbytes" not in sys.modules, "a plain LoRA model imported bitsandbytes"

    model, _, _ = build_training_model(TrainerConfig(**settings, use_qlora=True, qlora_bits=4), torch.device("cpu"))
    import bitsandbytes as bnb
    import peft.tuners.lora.bnb as lora_bnb
    layer = model.get_submodule(path)
    print(type(layer).__module__, type(layer).__name__, type(layer.base_layer).__name__)
    assert isinstance(layer, lora_bnb.Linear4bit) and isinstance(layer.base_layer, bnb.nn.Linear4bit)
    """
)


@pytest.mark.slow
def test_a_lora_model_is_built_without_bitsandbytes_and_qlora_still_wraps_its_layers(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [
        "peft.tuners.lora.layer Linear",
        "peft.tuners.lora.bnb Linear4bit Linear4bit",
    ]
