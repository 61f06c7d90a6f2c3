"""Ingest: every source format, column mapping, ids, splits, and the bad-input list."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepsynth.data.config import IngestConfig
from deepsynth.data.documents import DocumentDataset
from deepsynth.data.ingest import assign_split, ingest, sanitize, source_revision
from deepsynth.errors import ConfigError, InputError


def file_config(path, **kw):
    return IngestConfig(source="file", path=str(path), **kw)


def test_aclsum_is_bundled_real_data():
    docs = ingest(IngestConfig(source="aclsum"))
    assert docs.rows_per_split == {"train": 100, "validation": 50, "test": 100}
    assert docs.rejects == []
    row = next(docs.rows())
    assert row["id"] == "P06-1112"
    assert "dependency relation paths" in row["text"] and " ," not in row["text"]  # detokenised
    assert row["summary"].startswith("A generally accessible NER system")
    assert source_revision(IngestConfig(source="aclsum")) == "aclsum==0.1.2"


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_local_formats_with_column_mapping(tmp_path, make_docs, fmt):
    records = [{"article": d["text"], "highlights": d["summary"], "id": d["id"]} for d in make_docs(5)]
    path = tmp_path / f"docs.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif fmt == "csv":
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "article", "highlights"])
            writer.writeheader()
            writer.writerows(records)
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    docs = ingest(
        file_config(
            path, text_column="article", summary_column="highlights", instruction_prompt="Summarize this news article:"
        )
    )
    rows = list(docs.rows())
    assert [r["id"] for r in rows] == [f"doc-{i}" for i in range(5)]
    assert rows[2]["text"] == records[2]["article"] and rows[2]["summary"] == records[2]["highlights"]
    assert {r["instruction"] for r in rows} == {"Summarize this news article:"}
    assert docs.revision.startswith("sha256:")


def test_ids_and_splits_are_deterministic(write_jsonl, make_docs):
    records = [{"text": d["text"], "summary": d["summary"]} for d in make_docs(40)]
    path = write_jsonl(records)
    first, second = ingest(file_config(path)), ingest(file_config(path))
    assert first.table.equals(second.table)
    assert first.content_hash == second.content_hash
    ids = first.table.column("id").to_pylist()
    assert len(set(ids)) == 40 and all(len(i) == 16 for i in ids)  # content hashes
    assert set(first.rows_per_split) == {"train", "validation", "test"}
    assert first.rows_per_split["train"] > first.rows_per_split["test"]
    assert assign_split("doc-1", {"train": 1.0}) == "train"


def test_changed_data_changes_revision_and_hash(write_jsonl, make_docs):
    docs = make_docs(3)
    path = write_jsonl(docs)
    before = ingest(file_config(path))
    docs[1]["summary"] += " More."
    write_jsonl(docs)
    after = ingest(file_config(path))
    assert before.revision != after.revision and before.content_hash != after.content_hash


def test_invalid_utf8_jsonl_names_file_and_line(tmp_path, make_docs):
    good = [json.dumps(d).encode() for d in make_docs(3)]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join([good[0], b'{"id": "x", "text": "caf\xe9", "summary": "s"}', good[1], good[2]]) + b"\n")
    docs = ingest(file_config(path))
    assert docs.table.num_rows == 3 and docs.ingested == 4
    (reject,) = docs.rejects
    assert reject["file"] == str(path) and reject["row"] == 2
    assert "invalid UTF-8" in reject["reason"] and f"{path}, row 2" in reject["reason"]
    with pytest.raises(InputError, match=r"bad\.jsonl, row 2: invalid UTF-8"):
        ingest(file_config(path, on_bad_row="error"))


def test_invalid_utf8_csv_names_line_and_field(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,text,summary\na,Some text here,short\nb,caf\xe9 au lait text,short\n")
    docs = ingest(file_config(path))
    (reject,) = docs.rejects
    assert (reject["row"], reject["field"]) == (3, "text")
    assert "bad.csv, row 3, field 'text': invalid UTF-8" in reject["reason"]


def test_missing_column_is_an_error_naming_it(tmp_path, write_jsonl):
    path = tmp_path / "docs.csv"
    path.write_text("id,body,summary\na,text,s\n")
    with pytest.raises(InputError, match=r"docs\.csv, row 1, field 'text': column not found"):
        ingest(file_config(path))
    jsonl = write_jsonl([{"body": "x", "summary": "y"}])
    with pytest.raises(InputError, match="field 'text'"):
        ingest(file_config(jsonl))


def test_wrong_type_and_unknown_split_are_rejected_with_reason(write_jsonl):
    path = write_jsonl(
        [
            {"id": "a", "text": 42, "summary": "s"},
            {"id": "b", "text": "fine text", "summary": "s", "split": "holdout"},
            {"id": "c", "text": "fine text", "summary": "s", "split": "val"},
        ]
    )
    docs = ingest(file_config(path))
    reasons = {r["field"]: r["reason"] for r in docs.rejects}
    assert "expected text, got int" in reasons["text"]
    assert "unknown split 'holdout'" in reasons["split"]
    assert next(docs.rows())["split"] == "validation"  # 'val' alias
    assert docs.ingested == 3


def test_empty_and_missing_summary_are_kept_for_validation(write_jsonl):
    docs = ingest(file_config(write_jsonl([{"id": "a", "text": "   ", "summary": "s"}, {"id": "b", "text": "text"}])))
    rows = list(docs.rows())
    assert [(r["text"], r["summary"]) for r in rows] == [("   ", "s"), ("text", "")]


def test_control_and_bidi_characters_are_stripped_and_recorded(write_jsonl):
    path = write_jsonl([{"id": "a", "text": "left\u202eright\x07 end\r\nnext", "summary": "ok\u2066"}])
    docs = ingest(file_config(path))
    row = next(docs.rows())
    assert row["text"] == "leftright end\nnext" and row["summary"] == "ok"
    assert {(s["field"], tuple(s["removed"])) for s in docs.sanitized} == {
        ("text", ("U+0007", "U+202E")),
        ("summary", ("U+2066",)),
    }
    assert sanitize("tab\tand\nnewline") == ("tab\tand\nnewline", [])


def test_one_megabyte_document(write_jsonl):
    big = ("word " * 210_000)[:1_000_000]
    docs = ingest(file_config(write_jsonl([{"id": "big", "text": big, "summary": "short"}])))
    assert len(next(docs.rows())["text"]) == 1_000_000


def test_duplicate_ids_are_kept_for_validation_to_quarantine(write_jsonl):
    docs = ingest(
        file_config(
            write_jsonl([{"id": "a", "text": "one", "summary": "s"}, {"id": "a", "text": "two", "summary": "s"}])
        )
    )
    assert docs.table.column("id").to_pylist() == ["a", "a"]


def test_huggingface_source_through_datasets_load_dataset(tmp_path, make_docs):
    """The real datasets.load_dataset path, offline, on a local file via the 'json' builder."""
    path = tmp_path / "hub.jsonl"
    path.write_text(
        "".join(json.dumps({"article": d["text"], "highlights": d["summary"]}) + "\n" for d in make_docs(4))
    )
    config = IngestConfig(
        source="huggingface",
        hf_name="json",
        hf_data_files=[str(path)],
        hf_splits=["train"],
        text_column="article",
        summary_column="highlights",
        id_column=None,
    )
    docs = ingest(config)
    assert docs.table.num_rows == 4 and docs.rows_per_split["train"] == 4
    assert docs.source == "hf:json"


def test_config_errors():
    with pytest.raises(ValueError, match="ingest.path"):
        IngestConfig(source="file")
    with pytest.raises(ConfigError, match="does not exist"):
        ingest(IngestConfig(source="file", path="/nonexistent/file.jsonl"))
    with pytest.raises(ValueError, match="split_ratios"):
        IngestConfig(split_ratios={"train": 0.5})


def test_save_load_round_trip(tmp_path, write_jsonl, make_docs):
    docs = ingest(file_config(write_jsonl(make_docs(3) + [{"id": "z", "text": 1, "summary": "s"}])))
    docs.save(tmp_path / "out")
    back = DocumentDataset.load(tmp_path / "out")
    assert back.table.equals(docs.table) and back.rejects == docs.rejects and back.content_hash == docs.content_hash


def test_content_hash_is_the_same_as_before_it_read_buffers_in_place():
    """The hash keys caches and resume checks: computed from offsets and data buffers now (sliced chunks, nulls,
    empty strings, non-ASCII, a long text in its own array), it must equal the value-by-value hash it replaced."""
    from deepsynth.data.arrow_rows import table_from_rows
    from deepsynth.data.documents import SCHEMA

    rows = [
        {
            "id": f"d{i}",
            "split": "train" if i % 3 else "test",
            "text": "é漢\U0001f600 " * (i % 4),
            "summary": "" if i % 2 else f"S{i}",
            "instruction": None if i % 5 else "Summarize:",
            "source_row": i + 1,
        }
        for i in range(40)
    ]
    long = [{**rows[0], "id": "long", "text": "x" * (1 << 20) + "y"}, {**rows[1], "id": "none", "text": None}]
    table = pa.concat_tables(
        [
            table_from_rows(rows[:25], SCHEMA).slice(3, 20),
            table_from_rows(rows[25:], SCHEMA),
            table_from_rows(long, SCHEMA),
        ]
    )
    # value of the earlier implementation (scalar by scalar, `value.as_buffer()`), computed on this table
    expected = "3c02779c98b61773de16e4f43ae333e1ef7404398a84ecab0aa4a5d93086834d"
    assert DocumentDataset(table, "s", "r").content_hash == expected
