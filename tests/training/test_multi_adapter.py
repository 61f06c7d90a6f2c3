"""Several adapters in one run: each equals its one-adapter run (sequential: exactly; mixed: within a tolerance).

Real tiny-profile training on drawn pages; the reference runs are the plain DeepSynthLoRATrainer.
"""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deepsynth.errors import DeepSynthError
from deepsynth.training.adapter_set import read_adapter_index
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer
from deepsynth.training.multi_adapter import MultiAdapterTrainer

#: Two variants that differ in rank, learning rate, seed and data (legal trains on two of the four documents).
ADAPTERS = [
    {"name": "news", "lora_rank": 4, "lora_alpha": 8, "learning_rate": 0.01, "seed": 1},
    {"name": "legal", "lora_rank": 8, "seed": 7, "data": {"column": "id", "in": ["doc-0", "doc-2"]}},
]
#: Largest difference of a mixed-mode adapter tensor from its sequential twin (measured here: 0.0; joined batches may
#: round differently than one adapter's batch on other shapes and hardware; without per-row routing: 0.047).
MIXED_ATOL = 1e-5


def _tensors(folder):
    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def base_config(tmp_path_factory, deepsynth_home):
    from deepsynth.training.config import TrainerConfig

    return TrainerConfig(
        model_name="tiny",
        deepsynth_home=str(deepsynth_home),
        output_dir=str(tmp_path_factory.mktemp("multi") / "out"),
        batch_size=2,
        num_epochs=2,
        lora_dropout=0.0,
        max_length=256,
        max_summary_tokens=32,
        progress_bar=False,
        device="cpu",
        adapters=ADAPTERS,
    )


@pytest.fixture(scope="module")
def sequential(base_config, rendered):
    return MultiAdapterTrainer(base_config).train(rendered)[0]


def test_sequential_adapters_equal_their_one_adapter_runs_exactly(base_config, sequential, rendered, tmp_path):
    index = read_adapter_index(base_config.output_dir)
    assert [e["name"] for e in index["adapters"]] == ["news", "legal"]
    assert index["adapters"][1]["data"] == "id in ['doc-0', 'doc-2']"
    for variant in base_config.variants():
        alone = dataclasses.replace(variant.config, output_dir=str(tmp_path / variant.name))
        trainer = DeepSynthLoRATrainer(alone)
        trainer._selector = variant.data  # the one-adapter run of the same slice
        trainer.train(rendered)
        expected = _tensors(tmp_path / variant.name)
        got = _tensors(Path(base_config.output_dir) / variant.name)
        assert set(got) == set(expected) and got
        for name in expected:
            assert torch.equal(got[name], expected[name]), (variant.name, name)
    # rank 4 vs 8: each folder holds its own adapter only, with its own config
    config_news = json.loads((Path(base_config.output_dir) / "news" / "adapter_config.json").read_text())
    assert config_news["r"] == 4


def test_one_base_and_one_encoder_pass_for_every_adapter(sequential):
    per = sequential["adapters"]
    assert per["news"]["global_step"] == 4  # 4 docs / batch 2 x 2 epochs
    assert per["legal"]["global_step"] == 2  # 2 selected docs x 2 epochs
    # four distinct pages, encoded once for both adapters (legal's pages are all cache hits)
    assert sequential["feature_cache_misses"] == 4
    assert sequential["feature_cache_hits"] == 4 + 4


def test_mixed_mode_matches_sequential_within_tolerance(base_config, sequential, rendered, tmp_path):
    mixed = dataclasses.replace(base_config, output_dir=str(tmp_path / "mixed"), adapters_mode="mixed")
    metrics = MultiAdapterTrainer(mixed).train(rendered)[0]
    assert metrics["adapters_mode"] == "mixed"
    for name in ("news", "legal"):
        got, expected = _tensors(tmp_path / "mixed" / name), _tensors(Path(base_config.output_dir) / name)
        assert set(got) == set(expected)
        worst = max((got[k] - expected[k]).abs().max().item() for k in expected)
        assert worst <= MIXED_ATOL, (name, worst)
        assert any(not torch.equal(got[k], torch.zeros_like(got[k])) for k in got)
        seq_curve = sequential["adapters"][name]["loss_curve"]
        mixed_curve = metrics["adapters"][name]["loss_curve"]
        assert [s for s, _, _ in seq_curve] == [s for s, _, _ in mixed_curve]
        for (_, want, _), (_, have, _) in zip(seq_curve, mixed_curve):
            assert have == pytest.approx(want, rel=1e-3)


def test_a_selector_matching_no_training_document_stops_the_adapter(base_config, rendered, tmp_path):
    config = dataclasses.replace(
        base_config,
        output_dir=str(tmp_path / "none"),
        adapters=[{"name": "legal", "data": {"column": "id", "prefix": "legal-"}}],
    )
    with pytest.raises(DeepSynthError, match="where id starts with 'legal-'"):
        MultiAdapterTrainer(config).train(rendered)


def test_mixed_mode_routes_rows_through_backward_recomputation_too(base_config, sequential, rendered, tmp_path):
    """With activation checkpointing the layers run again in backward: each row must meet its own adapter there."""
    mixed = dataclasses.replace(
        base_config, output_dir=str(tmp_path / "gc"), adapters_mode="mixed", gradient_checkpointing=True
    )
    MultiAdapterTrainer(mixed).train(rendered)
    for name in ("news", "legal"):
        got, expected = _tensors(tmp_path / "gc" / name), _tensors(Path(base_config.output_dir) / name)
        worst = max((got[k] - expected[k]).abs().max().item() for k in expected)
        assert worst <= MIXED_ATOL, (name, worst)
