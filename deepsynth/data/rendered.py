"""On-disk format of a rendered dataset: Parquet shards of PNG pages plus a JSON manifest.

A rendered dataset is a directory::

    manifest.json            # format version, render settings, row counts, shard list
    shards/part-00000.parquet

Each row is one document rendered in one mode. Shards are written as they fill and read
back batch by batch, so neither side ever holds the whole dataset's images in memory.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from deepsynth.data.arrow_rows import table_from_rows, write_table

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_DIR = "shards"

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("split", pa.string()),
        ("mode", pa.string()),
        ("text", pa.string()),
        ("summary", pa.string()),
        ("instruction", pa.string()),
        ("pages", pa.list_(pa.binary())),  # lossless PNG bytes, one per page
        ("page_width", pa.int32()),
        ("page_height", pa.int32()),
        ("chars_total", pa.int64()),
        ("chars_rendered", pa.int64()),
        ("truncated", pa.bool_()),
        ("missing_glyphs", pa.list_(pa.int32())),  # code points the font cannot draw
        ("doc_hash", pa.string()),  # hash of the document's text + render settings
        ("task", pa.string()),  # the document's task or domain from ingest; null without one
    ]
)
COLUMNS = tuple(SCHEMA.names)
#: Columns a written row may leave out (null), and that shards written before them lack.
OPTIONAL_COLUMNS = ("task",)
TEXT_COLUMNS = ("text", "summary", "instruction")


@dataclass
class RenderedDocument:
    """One document rendered in one mode, as read back from a shard."""

    id: str
    split: str
    mode: str
    text: str
    summary: str
    instruction: str | None
    pages: list[bytes]
    page_width: int
    page_height: int
    chars_total: int
    chars_rendered: int
    truncated: bool
    missing_glyphs: list[int] = field(default_factory=list)
    doc_hash: str = ""
    task: str | None = None

    def page_images(self):
        """Decode the pages into PIL images (RGB)."""
        from PIL import Image

        return [Image.open(io.BytesIO(png)).convert("RGB") for png in self.pages]


def write_shard(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as one Parquet shard at ``path``, atomically (temp file, then rename)."""
    table = table_from_rows(rows, SCHEMA)
    tmp = path.with_name(path.name + ".tmp")
    write_table(table, tmp, TEXT_COLUMNS, compression="none")  # PNG bytes are already compressed
    tmp.replace(path)


def remove_earlier_dataset(path: Path) -> None:
    """Delete the manifest and shards a rendered dataset wrote into ``path`` (other files stay).

    The manifest goes first: a write interrupted after this never looks like a complete dataset.
    """
    (path / MANIFEST).unlink(missing_ok=True)
    for pattern in ("part-*.parquet", "part-*.parquet.tmp"):
        for shard in (path / SHARD_DIR).glob(pattern):
            shard.unlink()


class RenderedDatasetWriter:
    """Append rendered rows and flush them to Parquet shards of ``rows_per_shard`` rows.

    Writing into the folder of an earlier dataset replaces it: its manifest and shards are removed first.
    """

    def __init__(self, path: str | os.PathLike, settings: dict[str, Any], rows_per_shard: int = 64):
        self.path = Path(path)
        self.settings = settings
        self.rows_per_shard = rows_per_shard
        remove_earlier_dataset(self.path)
        (self.path / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        self._buffer: list[dict[str, Any]] = []
        self._shards: list[str] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self.pages_written = 0

    def write(self, row: dict[str, Any]) -> None:
        """Add one row (a dict with every column of :data:`SCHEMA`)."""
        missing = set(COLUMNS) - set(row) - set(OPTIONAL_COLUMNS)
        if missing:
            raise ValueError(f"rendered row {row.get('id')!r} lacks columns {sorted(missing)}")
        self._buffer.append(row)
        self._counts[(row["split"], row["mode"])] += 1
        self.pages_written += len(row["pages"])
        if len(self._buffer) >= self.rows_per_shard:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        name = f"{SHARD_DIR}/part-{len(self._shards):05d}.parquet"
        write_shard(self.path / name, self._buffer)
        self._shards.append(name)
        self._buffer = []

    def close(self, extra: dict[str, Any] | None = None) -> RenderedDataset:
        """Flush the last shard, write the manifest and return the dataset."""
        self._flush()
        rows_per_split: Counter[str] = Counter()
        rows_per_mode: Counter[str] = Counter()
        for (split, mode), n in self._counts.items():
            rows_per_split[split] += n
            rows_per_mode[mode] += n
        manifest = {
            "format_version": FORMAT_VERSION,
            "settings": self.settings,
            "rows": sum(self._counts.values()),
            "pages": self.pages_written,
            "rows_per_split": dict(sorted(rows_per_split.items())),
            "rows_per_mode": dict(sorted(rows_per_mode.items())),
            "shards": self._shards,
            **(extra or {}),
        }
        (self.path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return RenderedDataset(self.path)

    def __enter__(self) -> RenderedDatasetWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()


class RenderedDataset:
    """A rendered dataset directory, read lazily shard by shard."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{manifest_path}: not a rendered dataset (no {MANIFEST})")
        self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{manifest_path}: unsupported format_version {self.manifest.get('format_version')}")

    def __len__(self) -> int:
        return int(self.manifest["rows"])

    @property
    def shard_paths(self) -> list[Path]:
        return [self.path / s for s in self.manifest["shards"]]

    def iter_rows(
        self,
        split: str | None = None,
        mode: str | None = None,
        columns: list[str] | None = None,
        batch_size: int = 16,
    ) -> Iterator[dict[str, Any]]:
        """Yield rows as dicts, optionally filtered by split and mode, streaming small batches.

        A shard that lacks an :data:`OPTIONAL_COLUMNS` column gives None for it.
        """
        wanted = list(columns) if columns else list(COLUMNS)
        for shard in self.shard_paths:
            with pq.ParquetFile(shard) as pf:
                absent = set(OPTIONAL_COLUMNS) - set(pf.schema_arrow.names)  # a shard written before them
                read = sorted((set(wanted) | {"split", "mode"}) - absent)
                for batch in pf.iter_batches(batch_size=batch_size, columns=read):
                    for row in batch.to_pylist():
                        if (split is None or row["split"] == split) and (mode is None or row["mode"] == mode):
                            yield {k: row.get(k) for k in wanted}

    def iter_documents(self, split: str | None = None, mode: str | None = None) -> Iterator[RenderedDocument]:
        """Yield :class:`RenderedDocument` objects, optionally filtered by split and mode."""
        for row in self.iter_rows(split=split, mode=mode):
            yield RenderedDocument(**row)

    def documents(self, split: str | None = None, mode: str | None = None) -> list[RenderedDocument]:
        """All matching documents in a list (fine for small splits such as an evaluation set)."""
        return list(self.iter_documents(split=split, mode=mode))
