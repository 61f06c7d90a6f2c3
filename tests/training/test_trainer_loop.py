import json

import pytest
import torch
from safetensors.torch import load_file
from support.adapters import tiny_trainer_config

from deepsynth.adapter_layout import native_key
from deepsynth.inference.loading import attach_adapter as load_adapter
from deepsynth.models.loading import load_base_model
from deepsynth.models.vision import ocr_core
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer, TrainingDivergedError
from deepsynth.training.model_setup import build_training_model


def mean(values):
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, deepsynth_home, rendered):
    out = tmp_path_factory.mktemp("trained") / "adapter"
    config = tiny_trainer_config(deepsynth_home, out, num_epochs=8, lora_dropout=0.0)
    trainer = DeepSynthLoRATrainer(config)
    metrics, checkpoints = trainer.train(rendered.path)  # a path works as well as the object
    return config, trainer, metrics, checkpoints


def test_loss_goes_down(trained):
    _, _, metrics, _ = trained
    losses = [loss for _, loss, _ in metrics["loss_curve"]]
    assert metrics["global_step"] == 16 and len(losses) == 16  # 4 docs / batch 2 x 8 epochs
    assert mean(losses[-2:]) < mean(losses[:2]) - 2.0
    assert metrics["samples_per_second"] > 0 and metrics["tokens_per_second"] > metrics["samples_per_second"]
    assert 0 < metrics["mfu"] < 1


def test_adapter_is_written_and_differs_from_its_initialisation(trained, deepsynth_home):
    config, trainer, metrics, checkpoints = trained
    out = metrics["adapter_dir"]
    assert checkpoints == []  # no save_steps
    names = {p.name for p in __import__("pathlib").Path(out).iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "trainer_config.json"} <= names
    saved = {
        native_key(k): v for k, v in load_file(f"{out}/adapter_model.safetensors").items()
    }  # saved under original names
    fresh, _, _ = build_training_model(config, torch.device("cpu"))  # same seed: the untrained adapter
    initial = {n.replace(".default", ""): p for n, p in fresh.named_parameters() if p.requires_grad}
    assert set(saved) == set(initial)
    changed = [n for n in saved if not torch.allclose(saved[n], initial[n])]
    assert len(changed) == len(saved)  # every LoRA matrix moved, lora_B away from zero
    assert all(saved[n].abs().sum() > 0 for n in saved if "lora_B" in n)
    assert json.loads(open(f"{out}/trainer_config.json").read())["lora_rank"] == 8


def test_saved_adapter_reloads_onto_the_base_model_with_identical_outputs(trained, deepsynth_home):
    _, trainer, metrics, _ = trained
    base, _, _ = load_base_model("tiny", home=deepsynth_home)
    reloaded = load_adapter(base, metrics["adapter_dir"])
    trainer.model.eval()
    ids = torch.tensor([[0, 19923, 2058, 3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, trainer.model(input_ids=ids).logits)


def test_non_finite_loss_stops_with_a_clear_error_and_writes_nothing(tiny_config, rendered, tmp_path):
    config = tiny_config(learning_rate=1e35, max_grad_norm=0.0, num_epochs=4, output_dir=str(tmp_path / "nan"))
    with pytest.raises(TrainingDivergedError, match="lower learning_rate"):
        DeepSynthLoRATrainer(config).train(rendered)
    assert not (tmp_path / "nan" / "adapter_model.safetensors").exists()


def test_feature_cache_runs_the_encoder_once_per_image_and_changes_nothing(tiny_config, rendered, tmp_path):
    results = {}
    for cached in (True, False):
        trainer = DeepSynthLoRATrainer(tiny_config(feature_cache=cached, output_dir=str(tmp_path / str(cached))))
        calls = []
        original_setup = trainer._setup

        def setup_and_count(device, trainer=trainer, calls=calls, original_setup=original_setup):
            original_setup(device)
            ocr_core(trainer.model).vision_tower.register_forward_hook(lambda *a: calls.append(1))

        trainer._setup = setup_and_count
        metrics, _ = trainer.train(rendered)
        results[cached] = (len(calls), [loss for _, loss, _ in metrics["loss_curve"]], metrics)
    n_images, epochs = 4, 3
    assert results[True][0] == n_images
    assert results[False][0] == n_images * epochs
    assert results[True][2]["feature_cache_hits"] == n_images * (epochs - 1)
    assert results[True][1] == results[False][1]  # bit-identical loss curve


def test_feature_cache_on_disk_is_keyed_by_image_and_encoder(tiny_config, rendered, tmp_path):
    from deepsynth.models.feature_cache import FeatureCache

    cache_dir = tmp_path / "features"
    metrics, _ = DeepSynthLoRATrainer(tiny_config(feature_cache_dir=str(cache_dir), num_epochs=1)).train(rendered)
    [encoder_dir] = list(cache_dir.iterdir())
    assert len(list(encoder_dir.glob("*.safetensors"))) == 4
    other = FeatureCache("another-encoder", cache_dir)
    assert other.key(b"png", "tiny") != FeatureCache(encoder_dir.name).key(b"png", "tiny")
    metrics, _ = DeepSynthLoRATrainer(
        tiny_config(feature_cache_dir=str(cache_dir), num_epochs=1, output_dir=str(tmp_path / "again"))
    ).train(rendered)
    assert metrics["feature_cache_misses"] == 0  # a new process reads the disk copies


def test_supervised_loss_equals_the_models_own_label_loss(trained, rendered):
    from deepsynth.models.batching import build_batch, page_features, supervised_loss

    _, trainer, _, _ = trained
    items = trainer._prepare(rendered)[:3]  # summaries of different lengths: the batch is padded
    assert len({len(it.example.input_ids) for it in items}) > 1
    feats = [page_features(trainer.model, it, trainer.feature_cache) for it in items]
    batch = build_batch(trainer.model, items, feats, None, trainer.tokenizer.pad_token_id, torch.device("cpu"))
    trainer.model.eval()
    with torch.no_grad():
        reference = trainer.model(
            inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask, labels=batch.labels
        ).loss
        torch.testing.assert_close(supervised_loss(trainer.model, batch), reference)


def test_multi_page_gundam_documents_train(tiny_config, tmp_path, make_rendered):
    data = make_rendered(tmp_path / "gundam", n_docs=2, mode="gundam", size=(1280, 1920), pages=2)
    metrics, _ = DeepSynthLoRATrainer(tiny_config(num_epochs=2)).train(data)
    assert metrics["global_step"] == 2 and metrics["feature_cache_misses"] == 4  # 2 docs x 2 pages
    assert all(torch.isfinite(torch.tensor(loss)) for _, loss, _ in metrics["loss_curve"])


@pytest.mark.parametrize(
    "overrides",
    [
        {"mixed_precision": "bf16", "gradient_checkpointing": True},
        {"use_lora": False, "num_epochs": 1},
    ],
)
def test_bf16_checkpointing_and_full_decoder_fine_tuning(tiny_config, rendered, tmp_path, overrides):
    config = tiny_config(output_dir=str(tmp_path / "out"), **overrides)
    metrics, _ = DeepSynthLoRATrainer(config).train(rendered)
    losses = [loss for _, loss, _ in metrics["loss_curve"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    if config.use_lora:
        assert losses[-1] < losses[0]
        assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    else:
        base, _, _ = load_base_model("tiny", home=config.deepsynth_home)
        expected = sum(p.numel() for p in base.model.language_model.parameters()) + base.lm_head.weight.numel()
        assert metrics["trainable_params"] == expected
        assert (tmp_path / "out" / "model.safetensors").is_file()
