import json

import pytest
import torch
from transformers import DeepseekOcr2ForConditionalGeneration, UnlimitedOcrForConditionalGeneration

from deepsynth.errors import ConfigError
from deepsynth.models.architecture import deepseek_ocr_config
from deepsynth.models.loading import build_tiny_model, load_base_model, resolve_model_source, tiny_model_dir


def test_tiny_profile_is_saved_once_and_loaded_with_from_pretrained(deepsynth_home, tiny):
    model, tokenizer, source = tiny
    path = tiny_model_dir(deepsynth_home)
    assert source.location == str(path)
    assert (path / "model.safetensors").is_file() and not list(path.glob("*.bin"))
    assert isinstance(model, UnlimitedOcrForConditionalGeneration)
    assert model.config.text_config.hidden_size == 64 and model.config.text_config.num_hidden_layers == 2
    assert model.config.text_config.n_routed_experts == 4
    assert model.config.vision_config.sam_config.image_size == 128
    assert tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id == 128815
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    build_tiny_model(path)  # already there: not rebuilt
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime


def test_tiny_weights_are_seeded(tmp_path, tiny):
    other, _, _ = load_base_model(str(build_tiny_model(tmp_path / "again")))
    for (name, a), (_, b) in zip(tiny[0].state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), name


def test_local_directory_and_unknown_names(tmp_path, deepsynth_home):
    src = resolve_model_source(str(tiny_model_dir(deepsynth_home)))
    assert src.model_class is UnlimitedOcrForConditionalGeneration
    with pytest.raises(ConfigError, match="neither"):
        resolve_model_source("someone/else")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ConfigError, match="llama"):
        resolve_model_source(str(tmp_path))


@pytest.mark.parametrize(
    "name, cls, revision",
    [
        ("deepseek-ai/DeepSeek-OCR", UnlimitedOcrForConditionalGeneration, "abc123"),
        ("deepseek-ai/DeepSeek-OCR-2", DeepseekOcr2ForConditionalGeneration, "def456"),
    ],
)
def test_hub_names_load_natively_from_safetensors(monkeypatch, name, cls, revision):
    calls = []

    def fake_from_pretrained(location, **kwargs):  # the hub is the one thing we may not reach
        calls.append((location, kwargs))
        return torch.nn.Linear(1, 1)

    monkeypatch.setattr(cls, "from_pretrained", staticmethod(fake_from_pretrained))
    load_base_model(name, revision)
    location, kwargs = calls[0]
    assert location == name and kwargs["revision"] == revision
    assert kwargs["use_safetensors"] is True and kwargs["trust_remote_code"] is False
    assert isinstance(kwargs["config"], cls.config_class)


def test_deepseek_ocr_v1_config_matches_the_published_architecture():
    config = deepseek_ocr_config()
    text, vision = config.text_config, config.vision_config
    assert (text.vocab_size, text.hidden_size, text.num_hidden_layers) == (129280, 1280, 12)
    assert (text.n_routed_experts, text.num_experts_per_tok, text.n_shared_experts) == (64, 6, 2)
    assert text.mlp_layer_types[0] == "dense" and set(text.mlp_layer_types[1:]) == {"sparse"}
    assert set(text.layer_types) == {"full_attention"}
    assert vision.sam_config.hidden_size == 768 and vision.encoder_config.hidden_size == 1024
    with torch.device("meta"):
        model = UnlimitedOcrForConditionalGeneration(config)
    assert tuple(model.model.multi_modal_projector.weight.shape) == (1280, 2048)
    total = sum(p.numel() for p in model.parameters())
    assert 3.2e9 < total < 3.5e9  # DeepSeek-OCR: ~3.3B parameters, ~380M of them in the encoder
