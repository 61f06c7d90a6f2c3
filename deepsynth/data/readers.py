"""Raw readers of document sources: each yields ``(row number, record dict or InputError)``.

JSONL and JSON arrays, CSV, Parquet, the bundled ACLSum sample and Hugging Face datasets. A row that
cannot be read becomes an :class:`~deepsynth.errors.InputError` naming the file, row and field, so
ingestion can quarantine it with its reason; a source that cannot be read at all raises.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepsynth.configuration import bounded
from deepsynth.data.config import IngestConfig
from deepsynth.data.documents import SPLIT_ALIASES
from deepsynth.errors import ConfigError, InputError, Location


def existing_file(path: str | None) -> Path:
    p = Path(path or "")
    if not p.is_file():
        raise ConfigError(f"ingest.path: file {path!r} does not exist")
    return p


RawRow = tuple[int, dict[str, Any] | InputError]


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, InputError(Location(str(path), number), f"invalid UTF-8 at byte {exc.start} of the line")
                continue
            del raw  # a line can be a 200 MB document: hold one copy of it at a time where possible
            try:
                record = json.loads(line)
                del line
            except json.JSONDecodeError as exc:
                yield number, InputError(Location(str(path), number), f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(record, dict):
                yield number, InputError(Location(str(path), number), "expected a JSON object per line")
                continue
            yield number, record


def _read_json_array(path: Path) -> Iterator[RawRow]:
    try:
        records = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(Location(str(path)), f"cannot read JSON: {exc}") from None
    if not isinstance(records, list):
        raise InputError(Location(str(path)), "expected a JSON array of objects (or use .jsonl)")
    for number, record in enumerate(records, start=1):
        yield (
            number,
            record if isinstance(record, dict) else InputError(Location(str(path), number), "expected an object"),
        )


def _allow_fields_as_long_as(path: Path) -> None:
    """Raise the csv module's field limit (131,072 characters: one long paper) to the file's size."""
    csv.field_size_limit(max(csv.field_size_limit(), path.stat().st_size + 1))


def _open_csv(path: Path):
    # utf-8-sig drops a byte-order mark; surrogateescape keeps undecodable bytes visible per field
    # instead of failing the whole file.
    _allow_fields_as_long_as(path)
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _read_csv(path: Path) -> Iterator[RawRow]:
    with _open_csv(path) as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            number = reader.line_num  # physical line where this record ends
            bad = [k for k, v in record.items() if isinstance(v, str) and re.search("[\udc80-\udcff]", v)]
            if None in record:
                yield number, InputError(Location(str(path), number), "more fields than the header names")
            elif bad:
                yield number, InputError(Location(str(path), number, bad[0]), "invalid UTF-8 in this field")
            else:
                yield number, record


def _unreadable_parquet(path: Path, exc: Exception, after: int | None = None) -> InputError:
    """A Parquet file pyarrow cannot read (not Parquet, truncated, a corrupt page), named with the rows read so far."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f" after row {after}" if after else ""
    return InputError(Location(str(path)), f"cannot read this Parquet file{where}: {bounded(detail, 200)}")


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    number = 0
    try:
        with pq.ParquetFile(path) as pf:
            for batch in pf.iter_batches(batch_size=512):
                for record in batch.to_pylist():
                    number += 1
                    yield number, record
    except (pa.ArrowException, OSError) as exc:  # ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise _unreadable_parquet(path, exc, number) from None


def columns_of(path: Path) -> list[str] | None:
    """Column names where the format declares them up front (CSV header, Parquet schema)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with _open_csv(path) as handle:
            return next(csv.reader(handle), [])
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_schema(path).names
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable_parquet(path, exc) from None
    return None


def read_file(path: Path) -> Iterator[RawRow]:
    readers = {
        ".jsonl": _read_jsonl,
        ".ndjson": _read_jsonl,
        ".json": _read_json_array,
        ".csv": _read_csv,
        ".parquet": _read_parquet,
    }
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(f"ingest.path: {path} has unsupported extension; use one of {', '.join(readers)}")
    return reader(path)


def _detokenize(sentences: list[str]) -> str:
    """ACLSum ships tokenised sentences ('word , word .'); join them back into plain prose."""
    text = " ".join(sentences)
    text = re.sub(r" ([,.;:!?%)\]])", r"\1", text)
    return re.sub(r"([(\[]) ", r"\1", text).replace(" n't", "n't").replace(" 's", "'s")


def read_aclsum() -> Iterator[tuple[str, RawRow]]:
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
            yield (
                str(path),
                (number, {"id": record.get("id"), "text": text.strip(), "summary": summary.strip(), "split": split}),
            )


def read_huggingface(config: IngestConfig) -> Iterator[tuple[str, RawRow]]:
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
