"""Issue 27, items 6 and 20: a lone surrogate in JSONL text is one rejected row (not a failed ingest), and a
corrupt Parquet input is one clear error naming the file (exit 2, no raw ArrowInvalid)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.tamper import flipped

from deepsynth.data.config import IngestConfig
from deepsynth.data.documents import DocumentDataset
from deepsynth.data.ingest import ingest
from deepsynth.errors import InputError
from deepsynth_cli import main

# JSON escapes as json.dumps writes them for a lone surrogate: "\ud800" unpaired is valid JSON syntax.
LINES = [
    '{"id": "good-1", "text": "A first readable text.", "summary": "First."}',
    '{"id": "lone-high", "text": "Before \\ud800 after.", "summary": "Bad text."}',
    '{"id": "lone-low\\udfff", "text": "Text with a bad id.", "summary": "Bad id."}',
    '{"id": "bad-summary", "text": "Fine text.", "summary": "\\ud83d"}',
    '{"id": "pair", "text": "An emoji pair \\ud83d\\ude00 is fine.", "summary": "Paired."}',
    '{"id": "good-2", "text": "A last readable text.", "summary": "Last."}',
]


def _surrogate_file(tmp_path):
    path = tmp_path / "surrogates.jsonl"
    path.write_text("\n".join(LINES) + "\n", encoding="ascii")
    return path


def test_a_lone_surrogate_rejects_its_row_naming_file_row_and_field_and_the_rest_is_kept(tmp_path):
    path = _surrogate_file(tmp_path)
    docs = ingest(IngestConfig(source="file", path=str(path)))
    assert [r["id"] for r in docs.rows()] == ["good-1", "pair", "good-2"]
    assert next(r for r in docs.rows() if r["id"] == "pair")["text"] == "An emoji pair \U0001f600 is fine."
    found = {(r["file"], r["row"], r["field"]): r["reason"] for r in docs.rejects}
    assert set(found) == {(str(path), 2, "text"), (str(path), 3, "id"), (str(path), 4, "summary")}
    assert "lone surrogate U+D800 at character 8" in found[(str(path), 2, "text")]
    assert "U+DFFF" in found[(str(path), 3, "id")] and "U+D83D" in found[(str(path), 4, "summary")]
    assert docs.ingested == len(LINES)  # nothing silently lost
    # the table and the reject list are written (pyarrow and JSON both refuse a lone surrogate)
    docs.save(tmp_path / "saved")
    again = DocumentDataset.load(tmp_path / "saved")
    assert again.table.num_rows == 3 and len(again.rejects) == 3 and again.content_hash == docs.content_hash


def test_on_bad_row_error_stops_at_the_first_lone_surrogate_with_its_location(tmp_path):
    path = _surrogate_file(tmp_path)
    with pytest.raises(InputError, match=r"surrogates\.jsonl, row 2, field 'text': lone surrogate U\+D800") as exc:
        ingest(IngestConfig(source="file", path=str(path), on_bad_row="error"))
    assert exc.value.exit_code == 2


def test_render_command_goes_on_past_lone_surrogates_and_reports_them(tmp_path, capsys):
    path = _surrogate_file(tmp_path)
    argv = ["render", str(path), "--out", str(tmp_path / "out"), "--mode", "tiny", "--max-pages", "1", "--json"]
    assert main([*argv, "--set", "render.workers=1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["documents"] == 3
    assert [(r["row"], r["field"]) for r in result["rejected_rows"]] == [(2, "text"), (3, "id"), (4, "summary")]


def _parquet(path, rows=3000):
    table = pa.Table.from_pylist(
        [{"id": f"d{i}", "text": f"Readable text number {i}. " * 8, "summary": f"Summary {i}."} for i in range(rows)]
    )
    pq.write_table(table, path, row_group_size=500)
    return path.read_bytes()


def _corrupt(tmp_path, kind):
    good = _parquet(tmp_path / "good.parquet")
    path = tmp_path / f"{kind}.parquet"
    if kind == "not-parquet":
        path.write_bytes(b'{"id": "a", "text": "JSON named .parquet"}\n')
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    else:  # damaged pages in the middle, footer intact: the schema reads, a later row group fails
        middle, span = len(good) // 2, 3000
        chunk = good[middle : middle + span]
        for i in range(span):
            chunk = flipped(chunk, i)
        path.write_bytes(good[:middle] + chunk + good[middle + span :])
    return path


@pytest.mark.parametrize("kind", ["not-parquet", "truncated", "damaged-pages"])
def test_a_corrupt_parquet_input_is_one_input_error_naming_the_file(tmp_path, kind):
    path = _corrupt(tmp_path, kind)
    with pytest.raises(InputError, match="cannot read this Parquet file") as exc:
        ingest(IngestConfig(source="file", path=str(path)))
    assert exc.value.location.file == str(path) and exc.value.exit_code == 2
    assert str(exc.value).startswith(f"{path}: ")


@pytest.mark.parametrize("kind", ["not-parquet", "damaged-pages"])
def test_render_command_exits_2_on_a_corrupt_parquet_naming_the_file(tmp_path, kind, capsys):
    path = _corrupt(tmp_path, kind)
    assert main(["render", str(path), "--out", str(tmp_path / "out"), "--mode", "tiny", "--json"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)  # --json: the error is the one JSON document
    assert error["exit_code"] == 2 and error["error"].startswith(f"{path}: cannot read this Parquet file")
    assert "Traceback" not in captured.err and "ArrowInvalid" not in captured.err
