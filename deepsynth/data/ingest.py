"""Read documents from local files, a Hugging Face dataset or the bundled ACLSum sample."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Literal

import pyarrow as pa

from deepsynth.adapter_files import sha256_file
from deepsynth.configuration import check_choices, knob
from deepsynth.data.documents import SCHEMA, SPLITS, DocumentDataset
from deepsynth.errors import ConfigError, InputError, Location

SPLIT_ALIASES = {"train": "train", "validation": "validation", "val": "validation", "dev": "validation", "test": "test"}
# Bidi embeddings/overrides/isolates can make rendered text differ from its logical order.
_BIDI_CONTROLS = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))
_KEEP_CONTROLS = frozenset("\n\t")


@dataclass
class IngestConfig:
    """Where documents come from and how their columns map (the ``ingest`` section)."""

    source: Literal["aclsum", "file", "huggingface"] = knob("aclsum", "aclsum = bundled real sample; file = local JSONL/CSV/Parquet; huggingface = datasets.load_dataset")
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
    split_ratios: dict[str, float] = knob({"train": 0.8, "validation": 0.1, "test": 0.1}, "Split fractions when the source has none")
    instruction_prompt: str | None = knob(None, "Instruction carried with every document, e.g. 'Summarize this news article:'")
    max_documents: int | None = knob(None, "Keep at most this many documents per split (first rows); null = all")
    on_bad_row: Literal["quarantine", "error"] = knob("quarantine", "A row that cannot be read: record it and go on, or stop with an error")

    def __post_init__(self) -> None:
        check_choices(self, "ingest")
        if self.source == "file" and not self.path:
            raise ValueError("ingest.path: required when ingest.source is 'file'")
        if self.source == "huggingface" and not self.hf_name:
            raise ValueError("ingest.hf_name: required when ingest.source is 'huggingface'")
        if set(self.split_ratios) - set(SPLITS) or abs(sum(self.split_ratios.values()) - 1) > 1e-6:
            raise ValueError(f"ingest.split_ratios: keys must be among {SPLITS} and values sum to 1")


def sanitize(text: str) -> tuple[str, list[int]]:
    """Drop control and bidi-override characters (tab and newline stay); return text and removed code points."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    removed = sorted(
        {ord(ch) for ch in text if (unicodedata.category(ch) == "Cc" and ch not in _KEEP_CONTROLS) or ord(ch) in _BIDI_CONTROLS}
    )
    if removed:
        drop = set(map(chr, removed))
        text = "".join(ch for ch in text if ch not in drop)
    return text, removed


def content_id(text: str, summary: str) -> str:
    """Stable id for a document without one: a hash of its text and summary."""
    return hashlib.sha256(f"{text}\x1f{summary}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def assign_split(doc_id: str, ratios: dict[str, float]) -> str:
    """Deterministic split from a hash of the id, so a document keeps its split across runs."""
    bucket = int(hashlib.sha256(doc_id.encode("utf-8", "surrogatepass")).hexdigest()[:15], 16) / 16**15
    edge = 0.0
    for split in SPLITS:
        edge += ratios.get(split, 0.0)
        if bucket < edge:
            return split
    return SPLITS[-1]


def file_revision(path: str | Path) -> str:
    """sha256 of a file's bytes: the cache key of a local source."""
    return sha256_file(path)


def source_revision(config: IngestConfig) -> str:
    """What identifies the source's content, for step caching: changes whenever the data does."""
    if config.source == "file":
        return "sha256:" + file_revision(_existing(config.path))
    if config.source == "aclsum":
        return "aclsum==" + metadata.version("aclsum")
    return f"hf:{config.hf_name}/{config.hf_config}@{config.revision or 'unpinned'}"


def _existing(path: str | None) -> Path:
    p = Path(path or "")
    if not p.is_file():
        raise ConfigError(f"ingest.path: file {path!r} does not exist")
    return p


# ---- raw readers: each yields (row_number, record dict) or (row_number, InputError) -----------

RawRow = tuple[int, dict[str, Any] | InputError]


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, InputError(Location(str(path), number), f"invalid UTF-8 at byte {exc.start} of the line")
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, InputError(Location(str(path), number), f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(record, dict):
                yield number, InputError(Location(str(path), number), "expected a JSON object per line")
                continue
            yield number, record


def _read_json_array(path: Path) -> Iterator[RawRow]:
    try:
        records = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(Location(str(path)), f"cannot read JSON: {exc}") from None
    if not isinstance(records, list):
        raise InputError(Location(str(path)), "expected a JSON array of objects (or use .jsonl)")
    for number, record in enumerate(records, start=1):
        yield number, record if isinstance(record, dict) else InputError(Location(str(path), number), "expected an object")


def _read_csv(path: Path) -> Iterator[RawRow]:
    # surrogateescape keeps undecodable bytes visible per field instead of failing the whole file.
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for record in reader:
        number = reader.line_num  # physical line where this record ends
        bad = [k for k, v in record.items() if isinstance(v, str) and re.search("[\udc80-\udcff]", v)]
        if None in record:
            yield number, InputError(Location(str(path), number), "more fields than the header names")
        elif bad:
            yield number, InputError(Location(str(path), number, bad[0]), "invalid UTF-8 in this field")
        else:
            yield number, record


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    number = 0
    with pq.ParquetFile(path) as pf:
        for batch in pf.iter_batches(batch_size=512):
            for record in batch.to_pylist():
                number += 1
                yield number, record


def _columns_of(path: Path) -> list[str] | None:
    """Column names where the format declares them up front (CSV header, Parquet schema)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            return next(csv.reader(handle), [])
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path).names
    return None


def _read_file(path: Path) -> Iterator[RawRow]:
    readers = {".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".json": _read_json_array, ".csv": _read_csv, ".parquet": _read_parquet}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(f"ingest.path: {path} has unsupported extension; use one of {', '.join(readers)}")
    return reader(path)


def _detokenize(sentences: list[str]) -> str:
    """ACLSum ships tokenised sentences ('word , word .'); join them back into plain prose."""
    text = " ".join(sentences)
    text = re.sub(r" ([,.;:!?%)\]])", r"\1", text)
    return re.sub(r"([(\[]) ", r"\1", text).replace(" n't", "n't").replace(" 's", "'s")


def _read_aclsum() -> Iterator[tuple[str, RawRow]]:
    import aclsum

    root = Path(aclsum.__file__).parent / "dataset"
    for split, name in (("train", "train"), ("validation", "val"), ("test", "test")):
        path = root / f"{name}.jsonl"
        for number, record in _read_jsonl(path):
            if isinstance(record, InputError):
                yield str(path), (number, record)
                continue
            sections = record.get("sentences") or {}
            text = "\n\n".join(_detokenize(sections.get(s) or []) for s in ("abstract", "introduction", "conclusion"))
            summary = " ".join((record.get("summary") or {}).get(a, "") for a in ("challenge", "approach", "outcome"))
            yield str(path), (number, {"id": record.get("id"), "text": text.strip(), "summary": summary.strip(), "split": split})


def _read_huggingface(config: IngestConfig) -> Iterator[tuple[str, RawRow]]:
    import datasets

    for split in config.hf_splits:
        ds = datasets.load_dataset(
            config.hf_name,
            config.hf_config,
            split=split,
            revision=config.revision,
            data_files=config.hf_data_files,
        )
        where = f"hf:{config.hf_name}[{split}]"
        for number, record in enumerate(ds, start=1):
            record = dict(record)
            record.setdefault(config.split_column or "split", SPLIT_ALIASES.get(split, split))
            yield where, (number, record)


# ---- mapping raw records to documents --------------------------------------------------------


def _field(record: dict[str, Any], column: str, where: Location) -> str:
    value = record.get(column)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(Location(where.file, where.row, column), f"expected text, got {type(value).__name__}")
    return value


def _to_document(record: dict[str, Any], where: Location, config: IngestConfig, sanitized: list[dict]) -> dict[str, Any]:
    if config.text_column not in record:
        raise InputError(Location(where.file, where.row, config.text_column), "column is missing from this row")
    text = _field(record, config.text_column, where)
    summary = _field(record, config.summary_column, where)
    raw_id = record.get(config.id_column) if config.id_column else None
    doc_id = str(raw_id).strip() if raw_id not in (None, "") else content_id(text, summary)
    instruction = config.instruction_prompt
    for name in ("text", "summary"):
        value, removed = sanitize(locals()[name])
        if removed:
            sanitized.append({"id": doc_id, "row": where.row, "field": name, "removed": removed})
        if name == "text":
            text = value
        else:
            summary = value
    raw_split = record.get(config.split_column) if config.split_column else None
    split = SPLIT_ALIASES.get(str(raw_split).strip().lower()) if raw_split not in (None, "") else None
    if raw_split not in (None, "") and split is None:
        raise InputError(Location(where.file, where.row, config.split_column), f"unknown split {raw_split!r}; use {SPLITS}")
    return {
        "id": doc_id,
        "split": split or assign_split(doc_id, config.split_ratios),
        "text": text,
        "summary": summary,
        "instruction": instruction,
        "source_row": where.row,
    }


def ingest(config: IngestConfig) -> DocumentDataset:
    """Read the configured source into a :class:`DocumentDataset`.

    Rows that cannot be read (invalid UTF-8 or JSON, a field of the wrong type, an unknown split)
    are recorded in ``rejects`` with file, row, field and reason, or raise :class:`InputError`
    when ``on_bad_row`` is ``error``. A column missing from the whole source is always an error.
    """
    if config.source == "file":
        path = _existing(config.path)
        columns = _columns_of(path)
        if columns is not None:
            for column in (config.text_column, config.summary_column):
                if column not in columns:
                    raise InputError(Location(str(path), 1, column), f"column not found; columns are {columns}")
        raw = ((str(path), row) for row in _read_file(path))
        source = str(path)
    elif config.source == "aclsum":
        raw, source = _read_aclsum(), "aclsum"
    else:
        raw, source = _read_huggingface(config), f"hf:{config.hf_name}" + (f"/{config.hf_config}" if config.hf_config else "")

    docs, rejects, sanitized = [], [], []
    per_split: dict[str, int] = {}
    parsed = seen_text_column = False
    for file, (number, record) in raw:
        where = Location(file, number)
        try:
            if isinstance(record, InputError):
                raise record
            parsed = True
            seen_text_column |= config.text_column in record
            doc = _to_document(record, where, config, sanitized)
        except InputError as exc:
            if config.on_bad_row == "error":
                raise
            loc = exc.location
            rejects.append({"file": loc.file, "row": loc.row, "field": loc.field, "id": None, "reason": str(exc)})
            continue
        if config.max_documents is not None:
            per_split[doc["split"]] = per_split.get(doc["split"], 0) + 1
            if per_split[doc["split"]] > config.max_documents:
                continue
        docs.append(doc)
    if parsed and not seen_text_column:
        raise InputError(Location(source, None, config.text_column), "column not found in any row")
    table = pa.Table.from_pylist(docs, schema=SCHEMA)
    return DocumentDataset(table, source, source_revision(config), rejects, sanitized)
