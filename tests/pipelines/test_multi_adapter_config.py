"""train.adapters and train.sweep in a run configuration: expanded, and refused before anything runs (exit 2)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deepsynth.errors import ConfigError
from pipelines.config_loading import load_run_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def source(tmp_path):
    """A JSONL source whose ids and task column name the document's domain (legal-*, news-*), with fixed splits."""
    path = tmp_path / "docs.jsonl"
    rows = [
        {
            "id": f"{domain}-{i}",
            "split": split,
            "text": f"A {domain} text number {i}. It goes on.",
            "summary": "A text.",
            "task": domain,
        }
        for domain in ("legal", "news")
        for i, split in enumerate(["train", "train", "test"])
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_config(tmp_path, source, train):
    config = {
        "pipeline": "training",
        "ingest": {"source": "file", "path": str(source)},
        "render": {"modes": ["tiny"]},
        "train": {"model_name": "tiny", "mode": "tiny", **train},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_adapters_with_data_selectors_and_a_sweep_expand_into_named_variants(tmp_path, source):
    path = write_config(
        tmp_path,
        source,
        {
            "lora_rank": 16,
            "adapters": [
                {"name": "legal", "data": {"column": "id", "prefix": "legal-"}, "lora_alpha": 8},
                {"name": "news", "data": {"column": "id", "prefix": "news-"}, "num_epochs": 1},
            ],
            "sweep": {"learning_rate": [0.01, 0.001]},
        },
    )
    config = load_run_config(path)
    variants = {v.name: v for v in config.train.variants()}
    assert list(variants) == [
        "legal-learning_rate_0.01",
        "legal-learning_rate_0.001",
        "news-learning_rate_0.01",
        "news-learning_rate_0.001",
    ]
    legal = variants["legal-learning_rate_0.001"].config
    assert (legal.lora_rank, legal.lora_alpha, legal.learning_rate, legal.num_epochs) == (16, 8, 0.001, 3)
    assert variants["news-learning_rate_0.01"].config.num_epochs == 1
    assert variants["news-learning_rate_0.01"].data.matches({"id": "news-0"})
    assert not variants["news-learning_rate_0.01"].data.matches({"id": "legal-0"})


def test_a_selector_on_the_sources_task_column_passes_the_checks(tmp_path, source):
    path = write_config(
        tmp_path, source, {"adapters": [{"name": "legal", "data": {"column": "task", "equals": "legal"}}]}
    )
    (variant,) = load_run_config(path).train.variants()
    assert variant.data.describe() == "task == 'legal'" and variant.data.matches({"task": "legal"})


def test_a_task_selector_on_a_source_without_tasks_says_which_column_ingest_reads(tmp_path, source):
    path = write_config(
        tmp_path, source, {"adapters": [{"name": "legal", "data": {"column": "task", "equals": "legal"}}]}
    )
    config = yaml.safe_load(path.read_text())
    config["ingest"]["task_column"] = "domain"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    assert "no document has a task: ingest.task_column 'domain' names no column of the source" in str(caught.value)


@pytest.mark.parametrize(
    "train, says",
    [
        ({"adapters": [{"name": "a1"}, {"name": "a1"}]}, "train.adapters[1].name: duplicate adapter name 'a1'"),
        ({"adapters": [{"name": "a1", "lora_rnk": 4}]}, "train.adapters[0].lora_rnk: unknown key"),
        ({"adapters": [{"name": "a1", "use_qlora": True}]}, "train.adapters[0].use_qlora: one setting per run"),
        ({"adapters": [{"name": "a1", "lora_rank": 0}]}, "train.adapters[0].lora_rank: must be at least 1"),
        ({"sweep": {"lora_rank": 8}}, "train.sweep.lora_rank: expected a non-empty list"),
        ({"sweep": {"model_name": ["tiny"]}}, "train.sweep.model_name: one setting per run"),
        (
            {"adapters": [{"name": "a1", "data": {"column": "topic", "equals": "legal"}}]},
            "train.adapters[0].data.column: 'topic' is not one of ['task', 'id', 'instruction', 'text', 'summary']",
        ),
        (
            {"adapters": [{"name": "a1", "data": {"column": "task", "in": ["papers", "reviews"]}}]},
            "adapter 'a1' (train.adapters[0].data) selects no document of split 'train': none has task in "
            "['papers', 'reviews'] (4 documents in that split; their tasks: legal, news)",
        ),
        (
            {"adapters": [{"name": "papers", "data": {"column": "id", "prefix": "paper-"}}]},
            "adapter 'papers' (train.adapters[0].data) selects no document of split 'train': none has id starts "
            "with 'paper-'",
        ),
        (
            {"adapters_mode": "mixed", "adapters": [{"name": "a1", "lora_target_experts": True, "lora_dropout": 0.0}]},
            "train.adapters[0]: adapters_mode mixed",
        ),
    ],
)
def test_bad_adapter_configurations_are_refused_naming_the_key(tmp_path, source, train, says):
    with pytest.raises(ConfigError) as caught:
        load_run_config(write_config(tmp_path, source, train))
    assert says in str(caught.value)
    assert caught.value.exit_code == 2


def test_the_command_line_exits_2_with_one_line_before_any_model_code(tmp_path, source):
    path = write_config(tmp_path, source, {"adapters": [{"name": "papers", "data": {"column": "id", "equals": "x"}}]})
    code = (
        "import sys; from deepsynth_cli import main; rc = main(sys.argv[1:]); "
        "print('torch' in sys.modules, 'zenml' in sys.modules); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", "--config", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.split() == ["False", "False"]
    assert "selects no document of split 'train'" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1


def test_the_documented_configuration_expands_as_docs_multi_adapter_says():
    """docs/multi-adapter.md's first YAML block, as written: four variants, each with its selector and overrides."""
    from deepsynth.training.config import TrainerConfig

    text = (ROOT / "docs" / "multi-adapter.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    variants = {v.name: v for v in TrainerConfig.from_dict(yaml.safe_load(block)["train"]).variants()}
    assert list(variants) == [
        "legal-lora_dropout_0.0",
        "legal-lora_dropout_0.1",
        "news-lora_dropout_0.0",
        "news-lora_dropout_0.1",
    ]
    legal = variants["legal-lora_dropout_0.1"]
    assert legal.data.matches({"task": "legal"}) and (legal.config.lora_rank, legal.config.lora_alpha) == (16, 8)
    assert variants["news-lora_dropout_0.0"].data.matches({"id": "news-2"})
