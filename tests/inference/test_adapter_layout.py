"""Trained adapters load exactly through plain PEFT on the native class, and through deepsynth's loader.

Covers a LoRA adapter, LoRA on the fused MoE experts (peft ``target_parameters``) and a QLoRA-trained
expert adapter; an adapter in peft's native layout (saved before ``deepsynth.adapter_layout``) still
loads through the project's loader.
"""

import re

import pytest
import torch
from peft import PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file, save_file
from transformers import UnlimitedOcrForConditionalGeneration

from deepsynth.adapter_layout import native_key
from deepsynth.errors import DeepSynthError
from deepsynth.inference import load_adapter_model
from deepsynth.inference.loading import verify_adapter_loaded
from deepsynth.models.loading import tiny_model_dir
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer

TRAINED = {  # TrainerConfig overrides of each adapter kind (None: the session's shared LoRA adapter)
    "lora": None,
    "experts": {"lora_target_experts": True, "lora_dropout": 0.0},
    "qlora4-experts": {"lora_target_experts": True, "lora_dropout": 0.0, "use_qlora": True, "qlora_bits": 4},
}


@pytest.fixture(params=sorted(TRAINED))
def adapter(request, trained_adapter, tiny_config, rendered):
    """``(adapter directory, trained under QLoRA)`` for each kind of :data:`TRAINED`."""
    overrides = TRAINED[request.param]
    if overrides is None:
        return trained_adapter, False
    config = tiny_config(num_epochs=1, **overrides)
    DeepSynthLoRATrainer(config).train(rendered)
    return config.output_dir, config.use_qlora


def assert_loaded_exactly(model, adapter_dir):
    """The model's adapter state (peft's own view) equals the file, tensor for tensor."""
    saved = {native_key(k): v for k, v in load_file(f"{adapter_dir}/adapter_model.safetensors").items()}
    loaded = get_peft_model_state_dict(model)
    assert set(loaded) == set(saved)
    for key, value in saved.items():
        assert torch.equal(loaded[key], value), key


def test_plain_peft_and_the_project_loader_load_every_tensor(adapter, deepsynth_home):
    adapter_dir, quantized = adapter
    keys = list(load_file(f"{adapter_dir}/adapter_model.safetensors"))
    assert keys and all(".model.layers." in k and "language_model" not in k for k in keys)  # the original names
    base = UnlimitedOcrForConditionalGeneration.from_pretrained(tiny_model_dir(deepsynth_home))
    assert_loaded_exactly(PeftModel.from_pretrained(base, adapter_dir), adapter_dir)
    loaded = load_adapter_model(adapter_dir, home=deepsynth_home, quantized=quantized)  # verifies every tensor too
    if not quantized:  # the quantized base's experts are other modules; the loader's own check covered them
        assert_loaded_exactly(loaded.model, adapter_dir)


@pytest.fixture
def native_layout_copy(trained_adapter, tmp_path):
    """The shared adapter re-saved in peft's native layout (as adapters were saved before adapter_layout)."""
    for item in trained_adapter.iterdir():
        if item.is_file():
            (tmp_path / item.name).write_bytes(item.read_bytes())
    save_file(
        {native_key(k): v for k, v in load_file(trained_adapter / "adapter_model.safetensors").items()},
        str(tmp_path / "adapter_model.safetensors"),
    )
    return tmp_path


def test_an_adapter_in_peft_native_layout_still_loads_through_the_project_loader(native_layout_copy, deepsynth_home):
    assert_loaded_exactly(load_adapter_model(native_layout_copy, home=deepsynth_home).model, native_layout_copy)


def test_the_upstream_drop_of_native_keys_is_detected(native_layout_copy, deepsynth_home):
    """peft 0.21 + transformers' unlimited_ocr conversion drop native-layout keys; the check catches it."""
    base = UnlimitedOcrForConditionalGeneration.from_pretrained(tiny_model_dir(deepsynth_home))
    model = PeftModel.from_pretrained(base, native_layout_copy)
    with pytest.raises(DeepSynthError, match="not loaded exactly"):
        verify_adapter_loaded(model, native_layout_copy)


def test_one_attach_adds_named_adapters_beside_each_other(trained_adapter, native_layout_copy, deepsynth_home):
    """The same attach wraps a bare base and adds a second adapter (old layout too) under its own name, exactly."""
    from deepsynth.inference.loading import attach_adapter

    base = UnlimitedOcrForConditionalGeneration.from_pretrained(tiny_model_dir(deepsynth_home))
    model = attach_adapter(base, trained_adapter, "first")
    assert attach_adapter(model, native_layout_copy, "second") is model
    assert set(model.peft_config) == {"first", "second"}
    params = dict(model.named_parameters())
    for key, value in load_file(native_layout_copy / "adapter_model.safetensors").items():
        for name in ("first", "second"):
            assert torch.equal(params[re.sub(r"\.(lora_[AB])\.", rf".\1.{name}.", key)], value)


def test_an_attach_that_misses_a_tensor_is_refused_and_removed(trained_adapter, native_layout_copy, deepsynth_home):
    """A saved tensor that lands nowhere fails the check; the half-attached adapter is deleted again."""
    from deepsynth.inference.loading import attach_adapter

    tensors = load_file(native_layout_copy / "adapter_model.safetensors")
    key = next(k for k in tensors if ".lora_A." in k)
    tensors[re.sub(r"\.layers\.\d+\.", ".layers.99.", key, count=1)] = tensors[key].clone()
    save_file(tensors, str(native_layout_copy / "adapter_model.safetensors"))
    base = UnlimitedOcrForConditionalGeneration.from_pretrained(tiny_model_dir(deepsynth_home))
    model = attach_adapter(base, trained_adapter, "first")
    with pytest.raises(DeepSynthError, match="was not loaded exactly"):
        attach_adapter(model, native_layout_copy, "second")
    assert set(model.peft_config) == {"first"}
