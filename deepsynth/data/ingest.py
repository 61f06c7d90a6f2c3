"""Read documents from local files, a Hugging Face dataset or the bundled ACLSum sample."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa

from deepsynth.code_points import code_points
from deepsynth.configuration import lone_surrogate
from deepsynth.data.arrow_rows import table_from_rows
from deepsynth.data.config import IngestConfig
from deepsynth.data.documents import SCHEMA, SPLIT_ALIASES, SPLITS, DocumentDataset
from deepsynth.data.readers import columns_of, existing_file, read_aclsum, read_file, read_huggingface
from deepsynth.errors import InputError, Location
from deepsynth.integrity import sha256_file

#: Documents held as Python dicts before they become Arrow columns (a dict costs ~50x its text's size).
BATCH_ROWS = 4096
#: Characters of text held as dicts before a batch is converted early (a few huge documents).
BATCH_CHARS = 32 << 20
# C0/C1 controls except tab and newline (carriage returns become newlines first), and the bidi
# embeddings/overrides/isolates, which can make rendered text differ from its logical order.
_STRIPPED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Letters and symbols that draw nothing: Hangul fillers and the blank Braille pattern.
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def sanitize(text: str) -> tuple[str, list[int]]:
    """Drop control and bidi-override characters (tab and newline stay); return text and removed code points."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    removed = sorted({ord(ch) for ch in set(_STRIPPED.findall(text))})
    if removed:
        text = _STRIPPED.sub("", text)
    return text, removed


def _visible(ch: str) -> bool:
    """Whether ``ch`` draws something on its own: a letter, digit, punctuation mark or symbol."""
    return unicodedata.category(ch)[0] in "LNPS" and ch not in _BLANK_GLYPHS


def check_visible(value: str, where: Location | tuple[str, int, str]) -> None:
    """Refuse a text that is not blank yet has no visible character (zero-width or format characters only).

    Args:
        value: The text.
        where: Its location, or (file, row, field) to build one only when the text is refused.

    Raises:
        InputError: Naming the field and the first few code points it holds.
    """
    if not value.strip() or any(map(_visible, value)):
        return
    where = where if isinstance(where, Location) else Location(*where)
    hidden = code_points(ch for ch in value if not ch.isspace())
    shown = ", ".join(hidden[:5]) + (", ..." if len(hidden) > 5 else "")
    raise InputError(where, f"no visible characters (only zero-width, format or blank characters: {shown})")


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
        return "sha256:" + file_revision(existing_file(config.path))
    if config.source == "aclsum":
        return "aclsum==" + metadata.version("aclsum")
    return f"hf:{config.hf_name}/{config.hf_config}@{config.revision or 'unpinned'}"


# ---- mapping raw records to documents --------------------------------------------------------


def check_unicode(value: str, where: Location | tuple[str, int, str]) -> None:
    """Refuse a text holding a lone surrogate (JSON's ``"\\ud800"``): it is not Unicode and no UTF-8 encoder takes it.

    Args:
        value: The text.
        where: Its location, or (file, row, field) to build one only when the text is refused.

    Raises:
        InputError: Naming the field, the code point and its position.
    """
    problem = lone_surrogate(value)
    if problem is not None:
        where = where if isinstance(where, Location) else Location(*where)
        raise InputError(where, f"{problem} (an unpaired \\uD800-\\uDFFF escape): not valid Unicode text")


def _field(record: dict[str, Any], column: str, where: Location) -> str:
    value = record.get(column)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(Location(where.file, where.row, column), f"expected text, got {type(value).__name__}")
    check_unicode(value, (where.file, where.row, column))
    return value


def _to_document(
    record: dict[str, Any], where: Location, config: IngestConfig, sanitized: list[dict]
) -> dict[str, Any]:
    if config.text_column not in record:
        raise InputError(Location(where.file, where.row, config.text_column), "column is missing from this row")
    text = _field(record, config.text_column, where)
    summary = _field(record, config.summary_column, where)
    raw_id = record.get(config.id_column) if config.id_column else None
    if raw_id not in (None, ""):
        doc_id = str(raw_id).strip()
        check_unicode(doc_id, (where.file, where.row, config.id_column))
    else:
        doc_id = content_id(text, summary)
    instruction = config.instruction_prompt
    clean = {}
    for name, value in (("text", text), ("summary", summary)):
        clean[name], removed = sanitize(value)
        if removed:
            sanitized.append({"id": doc_id, "row": where.row, "field": name, "removed": code_points(removed)})
        check_visible(clean[name], (where.file, where.row, name))
    text, summary = clean["text"], clean["summary"]
    raw_split = record.get(config.split_column) if config.split_column else None
    split = SPLIT_ALIASES.get(str(raw_split).strip().lower()) if raw_split not in (None, "") else None
    if raw_split not in (None, "") and split is None:
        raise InputError(
            Location(where.file, where.row, config.split_column), f"unknown split {raw_split!r}; use {SPLITS}"
        )
    return {
        "id": doc_id,
        "split": split or assign_split(doc_id, config.split_ratios),
        "text": text,
        "summary": summary,
        "instruction": instruction,
        "source_row": where.row,
        "task": _task(record, where, config.task_column),
    }


def _task(record: dict[str, Any], where: Location, column: str | None) -> str | None:
    """The row's task label (a string or number, trimmed), or None when the row has none."""
    value = record.get(column) if column else None
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(Location(where.file, where.row, column), f"expected a task name, got {type(value).__name__}")
    value = str(value).strip()
    check_unicode(value, (where.file, where.row, column))
    return value or None


class _Batches:
    """Documents gathered as dicts up to a batch's rows or characters, then kept as Arrow tables only."""

    def __init__(self, rows: int | None, chars: int):
        self.rows, self.chars = rows, chars
        self.pending: list[dict[str, Any]] = []
        self.pending_chars = 0
        self.tables: list[pa.Table] = []

    def add(self, doc: dict[str, Any]) -> None:
        self.pending.append(doc)
        self.pending_chars += len(doc["text"]) + len(doc["summary"]) + len(doc["id"])
        if (self.rows is not None and len(self.pending) >= self.rows) or self.pending_chars >= self.chars:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.tables.append(table_from_rows(self.pending, SCHEMA))
        self.pending, self.pending_chars = [], 0

    def table(self) -> pa.Table:
        self.flush()
        return pa.concat_tables(self.tables) if self.tables else SCHEMA.empty_table()


def ingest(config: IngestConfig, batch_rows: int | None = BATCH_ROWS) -> DocumentDataset:
    """Read the configured source into a :class:`DocumentDataset`.

    Rows that cannot be read (invalid UTF-8 or JSON, a lone surrogate, a field of the wrong type, an
    unknown split) are recorded in ``rejects`` with file, row, field and reason, or raise
    :class:`InputError` when ``on_bad_row`` is ``error``. A column missing from the whole source is
    always an error.

    Rows are streamed: at most ``batch_rows`` documents (or :data:`BATCH_CHARS` characters) are held
    as Python dicts at a time, then they become Arrow columns, so memory follows the batch size and
    the texts' own size, not the row count. ``batch_rows=None`` gathers every row first (the
    benchmark's baseline).
    """
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    if config.source == "file":
        path = existing_file(config.path)
        columns = columns_of(path)
        if columns is not None:
            for column in (config.text_column, config.summary_column):
                if column not in columns:
                    raise InputError(Location(str(path), 1, column), f"column not found; columns are {columns}")
        raw = ((str(path), row) for row in read_file(path))
        source = str(path)
    elif config.source == "aclsum":
        raw, source = read_aclsum(), "aclsum"
    else:
        raw, source = (
            read_huggingface(config),
            f"hf:{config.hf_name}" + (f"/{config.hf_config}" if config.hf_config else ""),
        )

    batches = _Batches(batch_rows, BATCH_CHARS)
    rejects: list[dict[str, Any]] = []
    sanitized: list[dict[str, Any]] = []
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
        del record
        if config.max_documents is not None:
            per_split[doc["split"]] = per_split.get(doc["split"], 0) + 1
            if per_split[doc["split"]] > config.max_documents:
                continue
        batches.add(doc)
    if parsed and not seen_text_column:
        raise InputError(Location(source, None, config.text_column), "column not found in any row")
    return DocumentDataset(batches.table(), source, source_revision(config), rejects, sanitized)
