"""The ingested document table: one row per source document, plus what ingest rejected."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deepsynth.data.arrow_rows import write_table

SPLITS = ("train", "validation", "test")
# Split names as sources spell them → the names DeepSynth uses.
SPLIT_ALIASES = {"train": "train", "validation": "validation", "val": "validation", "dev": "validation", "test": "test"}
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("split", pa.string()),
        ("text", pa.string()),
        ("summary", pa.string()),
        ("instruction", pa.string()),
        ("source_row", pa.int64()),  # 1-based row/line in the source, for error messages
        ("task", pa.string()),  # the source's task or domain column (ingest.task_column); null without one
    ]
)
TEXT_COLUMNS = ("text", "summary", "instruction")
TABLE_FILE = "documents.parquet"
#: Rows and bytes per Parquet row group at most: the writer holds one group at a time (its default, 1Mi rows,
#: held the whole table of a million tiny rows).
ROW_GROUP_ROWS = 65_536
ROW_GROUP_BYTES = 64 << 20
META_FILE = "meta.json"


def _values_in_place(column: pa.Array) -> tuple[list[int], memoryview, list[bool] | None]:
    """A string array's value offsets (one more than its length), its data buffer, and which values are valid
    (None: all), without a Python object per value."""
    _, offsets, data = column.buffers()
    start = column.offset
    bounds = memoryview(offsets).cast("i")[start : start + len(column) + 1].tolist()
    valid = column.is_valid().to_pylist() if column.null_count else None
    return bounds, memoryview(data) if data is not None else memoryview(b""), valid


@dataclass
class DocumentDataset:
    """Documents read from one source, with provenance and every row ingest had to reject.

    Attributes:
        table: Arrow table with :data:`SCHEMA`.
        source: Human-readable source (file path, ``aclsum``, ``hf:name/config``).
        revision: Source revision: a file's sha256, a package version or a hub commit.
        rejects: Rows that could not be read, each ``{row, id, field, reason, file}``.
        sanitized: Rows whose text was cleaned, each ``{id, field, removed}`` (code points as ``U+XXXX``).
    """

    table: pa.Table
    source: str
    revision: str
    rejects: list[dict[str, Any]] = field(default_factory=list)
    sanitized: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ingested(self) -> int:
        """Every source row: the ones kept plus the ones rejected."""
        return self.table.num_rows + len(self.rejects)

    @property
    def rows_per_split(self) -> dict[str, int]:
        counts = {c["values"].as_py(): c["counts"].as_py() for c in pc.value_counts(self.table.column("split"))}
        return {split: counts.get(split, 0) for split in SPLITS}

    @property
    def content_hash(self) -> str:
        """sha256 over ids, splits, texts, summaries, instructions and (when the source has them) tasks, in row order.

        A dataset without tasks hashes as it did before the task column existed: the hash keys caches and
        resume checks.
        """
        digest = hashlib.sha256()
        names = ["id", "split", "text", "summary", "instruction"]
        if self.table.column("task").null_count < self.table.num_rows:
            names.append("task")
        columns = self.table.select(names)
        for batch in columns.to_batches():
            values = [_values_in_place(column) for column in batch.columns]
            for i in range(batch.num_rows):
                for offsets, data, valid in values:  # each value's UTF-8 bytes, length-prefixed, read in place
                    if valid is not None and not valid[i]:
                        digest.update(b"-")
                        continue
                    start, end = offsets[i], offsets[i + 1]
                    digest.update(b"%d:" % (end - start))
                    digest.update(data[start:end])
        return digest.hexdigest()

    def rows(self) -> Iterator[dict[str, Any]]:
        """Rows as dicts, batch by batch."""
        for batch in self.table.to_batches(max_chunksize=256):
            yield from batch.to_pylist()

    def metadata(self) -> dict[str, Any]:
        """Summary for artifact metadata and logs."""
        return {
            "source": self.source,
            "source_revision": self.revision,
            "content_hash": self.content_hash,
            "rows": self.table.num_rows,
            "rows_per_split": self.rows_per_split,
            "rejected": len(self.rejects),
            "sanitized": len(self.sanitized),
        }

    def save(self, directory: str | Path) -> None:
        """Write ``documents.parquet`` and ``meta.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        rows, size = self.table.num_rows, max(1, self.table.nbytes)
        group = max(1, min(ROW_GROUP_ROWS, ROW_GROUP_BYTES * rows // size))
        write_table(self.table, directory / TABLE_FILE, TEXT_COLUMNS, row_group_size=group)
        meta = {"source": self.source, "revision": self.revision, "rejects": self.rejects, "sanitized": self.sanitized}
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> DocumentDataset:
        """Read a dataset written by :meth:`save`."""
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        table = pq.read_table(directory / TABLE_FILE, schema=SCHEMA)
        return cls(table, meta["source"], meta["revision"], meta["rejects"], meta["sanitized"])
