"""Inputs that broke ingest or rendering: a field past csv's limit, a byte-order mark, invisible text,
and a render into the folder of an older one."""

from __future__ import annotations

import csv
import json

import pytest

from deepsynth.data.config import IngestConfig
from deepsynth.data.generator import render_dataset
from deepsynth.data.ingest import ingest
from deepsynth.data.rendered import SHARD_DIR, RenderedDataset
from deepsynth.rendering.config import RenderSettings
from deepsynth_cli import main

BOM = "\ufeff"


def file_config(path, **kw):
    return IngestConfig(source="file", path=str(path), **kw)


def test_a_csv_field_longer_than_the_csv_modules_default_limit_is_read(tmp_path):
    paper = ("A long paper sentence. " * 9000)[:200_000]  # Python's csv refuses > 131,072 by default
    assert len(paper) > csv.field_size_limit()
    path = tmp_path / "papers.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "summary"])
        writer.writerow(["long", paper, "A summary."])
        writer.writerow(["short", "Short text.", "Short."])
    docs = ingest(file_config(path))
    assert docs.rejects == []
    assert [len(r["text"]) for r in docs.rows()] == [200_000, len("Short text.")]


def _write(path, fmt, records):
    if fmt == "jsonl":
        body = "".join(json.dumps(r) + "\n" for r in records)
    elif fmt == "json":
        body = json.dumps(records)
    else:
        body = "text,summary,id\n" + "".join(f"{r['text']},{r['summary']},{r['id']}\n" for r in records)
    path.write_text(BOM + body, encoding="utf-8")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_a_utf8_byte_order_mark_is_read_by_every_reader(tmp_path, fmt):
    records = [{"text": f"Text number {i}.", "summary": f"Summary {i}.", "id": f"d{i}"} for i in range(3)]
    path = tmp_path / f"bom.{fmt}"
    _write(path, fmt, records)
    docs = ingest(file_config(path))  # the CSV's first column is `text`: its header must not read "\ufefftext"
    assert docs.rejects == []
    assert [(r["id"], r["text"]) for r in docs.rows()] == [(r["id"], r["text"]) for r in records]


def test_text_or_summary_without_a_visible_character_is_quarantined_with_a_reason(write_jsonl):
    path = write_jsonl(
        [
            {"id": "zero-width", "text": "\u200b\u200c\u200d\u2060\ufeff", "summary": "A summary."},
            {"id": "hangul-filler", "text": "\u3164 \u3164\n\u2800", "summary": "A summary."},
            {"id": "format-summary", "text": "Real text.", "summary": "\u200b \u00ad\u2063"},
            {"id": "emoji", "text": "Family: \U0001f468\u200d\U0001f469\u200d\U0001f467", "summary": "\u200bOk."},
        ]
    )
    docs = ingest(file_config(path))
    assert [r["id"] for r in docs.rows()] == ["emoji"]  # joiners inside visible text are kept
    reasons = {(r["row"], r["field"]): r["reason"] for r in docs.rejects}
    assert set(reasons) == {(1, "text"), (2, "text"), (3, "summary")}
    assert all("no visible characters" in reason for reason in reasons.values())
    assert "U+200B" in reasons[(1, "text")] and "U+3164" in reasons[(2, "text")]
    assert docs.ingested == 4
    # whitespace-only text is still left to validation's empty_text rule (it has no hidden characters)
    kept = ingest(file_config(write_jsonl([{"id": "a", "text": "  \n ", "summary": "s"}], name="blank.jsonl")))
    assert kept.rejects == [] and kept.table.num_rows == 1


def _render(docs, out, rows_per_shard=1):
    settings = RenderSettings(modes=["tiny"], max_pages=1, workers=1, rows_per_shard=rows_per_shard, page_cache=False)
    return render_dataset(docs, settings, out)


def test_rendering_into_an_older_render_leaves_no_stale_shards(tmp_path, make_docs):
    out = tmp_path / "out"
    docs = [{**d, "split": "train", "instruction": None} for d in make_docs(5, words=20)]
    first = _render(docs, out)
    assert len(first.manifest["shards"]) == 5
    second = _render(docs[:2], out)
    on_disk = sorted(p.relative_to(out).as_posix() for p in (out / SHARD_DIR).iterdir())
    assert on_disk == sorted(second.manifest["shards"]) and len(on_disk) == 2
    assert [r["id"] for r in RenderedDataset(out).iter_rows(columns=["id"])] == ["doc-0", "doc-1"]


def test_render_command_into_an_older_render_leaves_no_stale_shards_or_pngs(tmp_path, write_jsonl, make_docs, capsys):
    out = tmp_path / "out"
    many, few = write_jsonl(make_docs(4, words=20), "many.jsonl"), write_jsonl(make_docs(1, words=20), "few.jsonl")
    common = [
        "--out",
        str(out),
        "--mode",
        "tiny",
        "--max-pages",
        "1",
        "--png",
        "--json",
        "--set",
        "render.rows_per_shard=1",
        "--set",
        "render.workers=1",
    ]
    assert main(["render", str(many), *common]) == 0
    assert len(list((out / "png").glob("*.png"))) == 4
    capsys.readouterr()
    assert main(["render", str(few), *common]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(p.relative_to(out).as_posix() for p in (out / SHARD_DIR).iterdir()) == manifest["shards"]
    assert sorted(p.name for p in (out / "png").iterdir()) == ["doc-0-tiny-0.png", "index.json"]
