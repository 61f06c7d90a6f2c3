"""A source's own task column, carried from ingest through rendering and validation to a per-task adapter."""

import json

import pyarrow.parquet as pq
import pytest
from support.adapters import tiny_trainer_config

from deepsynth.data.config import IngestConfig
from deepsynth.data.documents import SCHEMA, DocumentDataset
from deepsynth.data.generator import render_dataset
from deepsynth.data.ingest import ingest
from deepsynth.data.rendered import RenderedDataset
from deepsynth.errors import InputError
from deepsynth.rendering.config import RenderSettings
from deepsynth.training.multi_adapter import MultiAdapterTrainer
from deepsynth.validation.config import ValidationConfig
from deepsynth.validation.validate import validate_dataset

TEXTS = {
    "legal": "The court held that the lease was void. The tenant may stay until May.",
    "news": "The bridge reopens next week. Traffic will be diverted until then.",
}


def write_source(path, tasks):
    """A JSONL source of one train document per task given, each with its own text."""
    rows = []
    for i, task in enumerate(tasks):
        text = f"{TEXTS[task]} This is document {i}."
        rows.append({"id": f"d{i}", "split": "train", "text": text, "summary": text.split(".")[0] + ".", "task": task})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_the_task_column_reaches_the_validated_pages_and_selects_each_adapters_documents(tmp_path, deepsynth_home):

    source = write_source(tmp_path / "docs.jsonl", ["legal", "news", "legal", "news", "news", "legal"])
    documents = ingest(IngestConfig(source="file", path=str(source)))
    assert documents.table.column("task").to_pylist() == ["legal", "news", "legal", "news", "news", "legal"]
    rendered = render_dataset(documents.rows(), RenderSettings(modes=["tiny"], workers=1), tmp_path / "rendered")
    outcome = validate_dataset(rendered, ValidationConfig(), tmp_path / "valid")
    valid = outcome.valid
    assert not outcome.quarantine, outcome.quarantine
    assert {(d.id, d.task) for d in valid.documents()} == {
        (f"d{i}", t) for i, t in enumerate(documents.table["task"].to_pylist())
    }

    config = tiny_trainer_config(
        deepsynth_home,
        tmp_path / "out",
        batch_size=1,
        num_epochs=1,
        max_summary_tokens=16,
        adapters=[
            {"name": "legal", "data": {"column": "task", "equals": "legal"}},
            {"name": "news", "data": {"column": "task", "in": ["news"]}, "max_steps": 2},
        ],
    )
    metrics = MultiAdapterTrainer(config).train(valid)[0]["adapters"]
    assert metrics["legal"]["global_step"] == 3  # its three documents, batch 1, one epoch
    assert metrics["news"]["global_step"] == 2


def test_task_values_are_names_or_numbers_and_anything_else_is_rejected_naming_row_and_field(tmp_path):
    source = tmp_path / "docs.jsonl"
    rows = [
        {"id": "a", "text": "One.", "summary": "One.", "task": " legal "},
        {"id": "b", "text": "Two.", "summary": "Two.", "task": 7},
        {"id": "c", "text": "Three.", "summary": "Three."},
        {"id": "d", "text": "Four.", "summary": "Four.", "task": ["legal"]},
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    documents = ingest(IngestConfig(source="file", path=str(source)))
    assert documents.table.column("task").to_pylist() == ["legal", "7", None]
    (reject,) = documents.rejects
    assert (reject["row"], reject["field"]) == (4, "task") and "expected a task name, got list" in reject["reason"]
    with pytest.raises(InputError, match=r"docs.jsonl.*row 4.*task"):
        ingest(IngestConfig(source="file", path=str(source), on_bad_row="error"))
    other = ingest(IngestConfig(source="file", path=str(source), task_column=None))
    assert other.table.column("task").null_count == 4 and not other.rejects


def test_datasets_written_before_the_task_column_still_load_with_no_tasks(tmp_path):
    """Artifacts and rendered shards from earlier versions lack the column; they read back with task None."""
    source = write_source(tmp_path / "docs.jsonl", ["legal", "news"])
    documents = ingest(IngestConfig(source="file", path=str(source), task_column=None))
    documents.save(tmp_path / "docs")
    table = pq.read_table(tmp_path / "docs" / "documents.parquet").drop_columns(["task"])
    pq.write_table(table, tmp_path / "docs" / "documents.parquet")
    old = DocumentDataset.load(tmp_path / "docs")
    assert old.table.schema.equals(SCHEMA) and old.table.column("task").null_count == 2
    assert old.content_hash == documents.content_hash  # a dataset without tasks hashes as before the column

    rendered = render_dataset(documents.rows(), RenderSettings(modes=["tiny"], workers=1), tmp_path / "rendered")
    for shard in rendered.shard_paths:
        pq.write_table(pq.read_table(shard).drop_columns(["task"]), shard)
    assert [d.task for d in RenderedDataset(rendered.path).documents()] == [None, None]


def test_tasks_change_the_content_hash_only_when_present(tmp_path):
    source = write_source(tmp_path / "docs.jsonl", ["legal", "news"])
    with_tasks = ingest(IngestConfig(source="file", path=str(source)))
    without = ingest(IngestConfig(source="file", path=str(source), task_column=None))
    relabelled = ingest(IngestConfig(source="file", path=str(write_source(tmp_path / "b.jsonl", ["news", "news"]))))
    assert len({with_tasks.content_hash, without.content_hash, relabelled.content_hash}) == 3
