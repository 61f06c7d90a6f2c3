"""evaluate_adapter_set: one base model for every adapter, with the results of loading each adapter alone.

Two real adapters of one multi-adapter training run (tiny profile, different rank, learning rate and seed).
"""

import json
import shutil

import pytest
import torch
from support.adapters import prompt_logits, tiny_trainer_config

from deepsynth.evaluation import evaluate
from deepsynth.evaluation.adapter_set import evaluate_adapter_set, load_on_shared_base
from deepsynth.evaluation.result import ADAPTER, VARIANT_PREFIX
from deepsynth.inference import GenerationConfig
from deepsynth.inference.loading import load_adapter_model
from deepsynth.training.adapter_set import read_adapter_index

GEN = GenerationConfig(max_new_tokens=8, batch_size=2)
ADAPTERS = [
    {"name": "news", "lora_rank": 4, "lora_alpha": 8, "learning_rate": 0.02, "seed": 1},
    {"name": "legal", "lora_rank": 8, "learning_rate": 0.05, "seed": 7},
]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, shared_home, rendered_dataset):
    from deepsynth.training.multi_adapter import MultiAdapterTrainer

    out = tmp_path_factory.mktemp("adapter_set") / "out"
    config = tiny_trainer_config(shared_home, out, mode="tiny", num_epochs=2, lora_dropout=0.0, adapters=ADAPTERS)
    MultiAdapterTrainer(config).train(rendered_dataset)
    return {entry["name"]: entry["dir"] for entry in read_adapter_index(out)["adapters"]}


def _untimed(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key != "latency_s"}


def test_every_adapter_scores_as_when_loaded_alone(adapters, test_docs, shared_home):
    together = evaluate_adapter_set(adapters, test_docs, generation=GEN, k=1, home=shared_home)
    expected_systems, expected_rows = {}, []
    for position, (name, folder) in enumerate(adapters.items()):
        alone = evaluate(
            load_adapter_model(folder, home=shared_home),
            test_docs,
            generation=GEN,
            k=1,
            include_base=position == 0,
            home=shared_home,
        )
        for system, metrics in alone.systems.items():
            if system == ADAPTER or position == 0:
                expected_systems[VARIANT_PREFIX + name if system == ADAPTER else system] = metrics
        for row in alone.rows:
            if row["system"] == ADAPTER or position == 0:
                system = VARIANT_PREFIX + name if row["system"] == ADAPTER else row["system"]
                expected_rows.append({**row, "system": system})
    assert list(together.systems) == ["adapter/news", "adapter/legal", "base", "lead_1"]
    assert {s: _untimed(m) for s, m in together.systems.items()} == {
        s: _untimed(m) for s, m in expected_systems.items()
    }
    assert sorted((r["system"], r["id"], r["prediction"]) for r in together.rows) == sorted(
        (r["system"], r["id"], r["prediction"]) for r in expected_rows
    )
    assert [_untimed(r) for r in together.rows] == [_untimed(r) for r in expected_rows]
    assert together.config["adapters"] == ["news", "legal"]


def test_later_adapters_attach_to_the_first_ones_base_and_are_switched_in(adapters, test_docs, shared_home):
    news = load_on_shared_base(adapters["news"], None, shared_home)
    legal = load_on_shared_base(adapters["legal"], news, shared_home)
    assert legal.model is news.model and len(news.model.peft_config) == 2  # one base, two peft adapters
    assert legal.trainer_config["lora_rank"] == 8 and str(legal.adapter_dir) == adapters["legal"]
    doc = test_docs[0]
    shared_logits = prompt_logits(legal, doc)[0]
    alone = {name: prompt_logits(load_adapter_model(path, home=shared_home), doc)[0] for name, path in adapters.items()}
    assert not torch.equal(alone["news"], alone["legal"])  # the adapters differ, so the active one matters
    assert torch.equal(shared_logits, alone["legal"])
    news.model.set_adapter("default", inference_mode=True)
    assert torch.equal(prompt_logits(news, doc)[0], alone["news"])


def test_an_adapter_trained_on_another_base_dtype_gets_a_base_of_its_own(adapters, shared_home, tmp_path):
    other_dir = tmp_path / "bf16"
    shutil.copytree(adapters["legal"], other_dir)
    config = json.loads((other_dir / "trainer_config.json").read_text())
    (other_dir / "trainer_config.json").write_text(json.dumps({**config, "model_dtype": "bfloat16"}))
    news = load_on_shared_base(adapters["news"], None, shared_home)
    other = load_on_shared_base(other_dir, news, shared_home)
    assert other.model is not news.model and list(news.model.peft_config) == ["default"]
    assert next(other.model.parameters()).dtype == torch.bfloat16
