"""The ``ingest`` section: where documents come from and how their columns map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deepsynth.configuration import Section, knob
from deepsynth.data.documents import SPLITS


@dataclass
class IngestConfig(Section):
    """Where documents come from and how their columns map (the ``ingest`` section)."""

    _section = "ingest"

    source: Literal["aclsum", "file", "huggingface"] = knob(
        "aclsum", "aclsum = bundled real sample; file = local JSONL/CSV/Parquet; huggingface = datasets.load_dataset"
    )
    path: str | None = knob(None, "Local file for source=file (.jsonl, .json, .csv, .parquet)")
    hf_name: str | None = knob(None, "Dataset name for source=huggingface, e.g. cnn_dailymail")
    hf_config: str | None = knob(None, "Dataset configuration, e.g. '3.0.0'")
    hf_splits: list[str] = knob(["train", "validation", "test"], "Source splits to read for source=huggingface")
    hf_data_files: list[str] | None = knob(None, "data_files for packaged builders such as 'parquet' or 'json'")
    revision: str | None = knob(None, "Pinned dataset revision (a commit hash) for source=huggingface")
    text_column: str = knob("text", "Column holding the document text (cnn_dailymail: article)")
    summary_column: str = knob("summary", "Column holding the reference summary (cnn_dailymail: highlights)")
    id_column: str | None = knob("id", "Column with a stable document id; rows without one get a content hash")
    split_column: str | None = knob("split", "Column naming the split; absent values get a deterministic split")
    task_column: str | None = knob(
        "task", "Column naming each document's task or domain, which train.adapters[].data can select on"
    )
    split_ratios: dict[str, float] = knob(
        {"train": 0.8, "validation": 0.1, "test": 0.1}, "Split fractions when the source has none"
    )
    instruction_prompt: str | None = knob(
        None, "Instruction carried with every document, e.g. 'Summarize this news article:'"
    )
    max_documents: int | None = knob(None, "Keep at most this many documents per split (first rows); null = all")
    on_bad_row: Literal["quarantine", "error"] = knob(
        "quarantine", "A row that cannot be read: record it and go on, or stop with an error"
    )

    def __post_init__(self) -> None:
        if self.source == "file" and not self.path:
            raise ValueError("ingest.path: required when ingest.source is 'file'")
        if self.source == "huggingface" and not self.hf_name:
            raise ValueError("ingest.hf_name: required when ingest.source is 'huggingface'")
        if set(self.split_ratios) - set(SPLITS) or abs(sum(self.split_ratios.values()) - 1) > 1e-6:
            raise ValueError(f"ingest.split_ratios: keys must be among {SPLITS} and values sum to 1")
