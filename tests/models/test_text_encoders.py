import pytest
import torch
from transformers import AutoTokenizer, Qwen3Config, Qwen3Model

from deepsynth.errors import ConfigError
from deepsynth.models.text_encoders import build_text_encoder, bundled_minilm_path, load_text_encoder
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer


@pytest.fixture(scope="module")
def tiny_qwen3(tmp_path_factory):
    """A tiny native Qwen3Model saved with safetensors (MiniLM's tokenizer stands in for Qwen's)."""
    path = tmp_path_factory.mktemp("qwen3")
    tokenizer = AutoTokenizer.from_pretrained(bundled_minilm_path())
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
    )
    Qwen3Model(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def test_bundled_minilm_is_the_real_pretrained_bert():
    encoder = build_text_encoder("bert", None, 384, use_projection=False, trainable=False)
    assert encoder.encoder.config.hidden_size == 384 and encoder.encoder.config.num_hidden_layers == 6
    with torch.no_grad():
        a, b, c = encoder(["Summarize this text:", "Summarise the following text.", "The cat sat on the mat."])
    cos = torch.nn.functional.cosine_similarity
    assert cos(a, b, dim=0) > cos(a, c, dim=0) + 0.2  # pretrained: paraphrases sit closer


def test_width_mismatch_needs_a_projection():
    with pytest.raises(ConfigError, match="use_text_projection"):
        build_text_encoder("bert", None, 64, use_projection=False, trainable=False)


@pytest.mark.parametrize("kind, trainable", [("bert", False), ("qwen3", True)])
def test_text_encoder_trains_with_the_adapter_and_reloads(tiny_config, rendered, tmp_path, tiny_qwen3, kind, trainable):
    source = str(tiny_qwen3) if kind == "qwen3" else None
    config = tiny_config(
        use_text_encoder=True,
        text_encoder_type=kind,
        text_encoder_model=source,
        text_encoder_trainable=trainable,
        use_text_projection=True,
        num_epochs=2,
    )
    trainer = DeepSynthLoRATrainer(config)
    before = None

    def snapshot():
        return {n: p.detach().clone() for n, p in trainer.text_encoder.named_parameters()}

    original_setup = trainer._setup

    def setup_and_snapshot(device):
        nonlocal before
        original_setup(device)
        before = snapshot()

    trainer._setup = setup_and_snapshot
    metrics, _ = trainer.train(rendered)
    after = snapshot()
    assert not torch.equal(before["projection.weight"], after["projection.weight"])  # projection always trains
    encoder_changed = any(not torch.equal(before[n], after[n]) for n in before if n.startswith("encoder."))
    assert encoder_changed == trainable
    trained = [p for module in (trainer.model, trainer.text_encoder) for p in module.parameters() if p.requires_grad]
    encoder_trained = sum(p.numel() for p in trainer.text_encoder.parameters() if p.requires_grad)
    assert metrics["trainable_params"] == sum(p.numel() for p in trained)  # the text encoder's count too
    assert encoder_trained > 0 and metrics["trainable_params"] > sum(
        p.numel() for p in trainer.model.parameters() if p.requires_grad
    )

    out = tmp_path / "out"
    saved = out / "text_encoder"
    assert (saved / "projection.safetensors").is_file()
    assert (saved / "weights" / "model.safetensors").is_file() == trainable  # a frozen encoder is referenced
    reloaded = load_text_encoder(out)
    trainer.text_encoder.eval()
    with torch.no_grad():
        texts = ["Summarize this text:", "Give the gist."]
        torch.testing.assert_close(reloaded(texts), trainer.text_encoder(texts))
    assert reloaded.out_dim == 64
