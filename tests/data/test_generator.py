"""IncrementalDatasetGenerator: job keys as documented, resumable, renders nothing twice."""

from __future__ import annotations

import pytest

from deepsynth.data import IncrementalDatasetGenerator, StateManager
from deepsynth.errors import ConfigError


def job(tmp_path, path, **kw):
    return {
        "source_dataset": str(path),
        "output_dir": str(tmp_path / "out"),
        "instruction_prompt": "Summarize this news article:",
        "multi_resolution": True,
        "resolution_sizes": ["tiny", "small"],
        "chunk_size": 3,
        "render": {"workers": 1},
        **kw,
    }


def test_seed_example_keys_produce_a_multi_resolution_dataset(tmp_path, write_jsonl, make_docs):
    config = job(tmp_path, write_jsonl(make_docs(7)))
    dataset = IncrementalDatasetGenerator(StateManager(tmp_path / "state")).generate_dataset("job-1", config=config)
    assert len(dataset) == 14 and dataset.manifest["rows_per_mode"] == {"small": 7, "tiny": 7}
    assert {d.instruction for d in dataset.iter_documents()} == {"Summarize this news article:"}
    assert StateManager(tmp_path / "state").load("job-1")["status"] == "completed"


def test_interrupted_job_resumes_without_rendering_twice(tmp_path, write_jsonl, make_docs):
    config = job(tmp_path, write_jsonl(make_docs(8)))
    state = StateManager(tmp_path / "state")

    def stop_after_first(index, total):
        if index == 0:
            raise KeyboardInterrupt  # the job dies after its first chunk

    with pytest.raises(KeyboardInterrupt):
        IncrementalDatasetGenerator(state).generate_dataset("job-2", config=config, on_chunk=stop_after_first)
    first_shard = tmp_path / "out" / "shards" / "part-00000.parquet"
    stamp = first_shard.stat().st_mtime_ns
    assert state.load("job-2")["chunks_done"] == [0]

    rendered_now = []
    dataset = IncrementalDatasetGenerator(state).generate_dataset(
        "job-2", config=config, on_chunk=lambda i, n: rendered_now.append(i)
    )
    assert rendered_now == [1, 2]  # chunk 0 was not rendered again
    assert first_shard.stat().st_mtime_ns == stamp
    assert len(dataset) == 16 and sorted({d.id for d in dataset.iter_documents()}) == sorted(
        f"doc-{i}" for i in range(8)
    )


def test_changed_job_config_and_unknown_keys_are_refused(tmp_path, write_jsonl, make_docs):
    path = write_jsonl(make_docs(2))
    generator = IncrementalDatasetGenerator(StateManager(tmp_path / "state"))
    generator.generate_dataset("job-3", config=job(tmp_path, path))
    with pytest.raises(ConfigError, match="configuration changed"):
        generator.generate_dataset("job-3", config=job(tmp_path, path, resolution_sizes=["base"]))
    with pytest.raises(ConfigError, match="unknown key"):
        generator.generate_dataset("job-4", config={**job(tmp_path, path), "resolution": "base"})
