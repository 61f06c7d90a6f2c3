"""validate_dataset end to end on small real rendered datasets."""

from __future__ import annotations

import json

import pytest
from support.rendered import bomb_png, png_bytes, write_dataset
from support.tamper import flipped

from deepsynth.errors import DataValidationError
from deepsynth.validation import (
    ValidationConfig,
    ValidationReport,
    raise_for_failure,
    render_report_html,
    validate_dataset,
)


def _good(row, n=3, **kw):
    return [row(**kw) for _ in range(n)]


def _run(dataset, rows, tmp_path, config=None, **kw):
    return validate_dataset(dataset(rows), config or ValidationConfig(), tmp_path / "out", **kw)


def _quarantined(outcome):
    return {q["id"]: q for q in outcome.quarantine}


def test_clean_dataset_passes_and_is_copied(row, dataset, tmp_path):
    text = "One document rendered in three modes, counted once."
    rows = _good(row, 3) + [row(id="multi", mode=m, text=text) for m in ("tiny", "small", "gundam")]
    outcome = _run(dataset, rows, tmp_path, rows_per_shard=2)
    report = outcome.report
    assert report.success and report.failures == []
    assert len(outcome.valid.shard_paths) == 3  # written shard by shard
    assert (report.ingested, report.valid, report.quarantined) == (4, 4, 0)  # a multi-mode doc is one document
    assert report.rows_valid == len(outcome.valid) == 6
    assert report.pages == 6
    assert outcome.valid.path == tmp_path / "out"
    assert outcome.valid.manifest["validation"]["ingested"] == 4
    assert [r["id"] for r in outcome.valid.iter_rows(columns=["id"])] == [r["id"] for r in rows]
    assert {c.name for c in report.checks if c.level == "dataset"} == {
        "min_valid_documents",
        "valid_ids_unique",
        "missing_glyph_fraction",
        "truncated_fraction",
    }
    assert all(c.success for c in report.checks)


BAD_ROWS = {
    "empty text": (dict(text=""), "empty_text", "text", "empty or whitespace-only text"),
    "whitespace text": (dict(text=" \n\t "), "empty_text", "text", "empty or whitespace-only text"),
    "empty summary": (dict(summary=""), "empty_summary", "summary", "empty or missing summary"),
    "missing summary": (dict(summary=None), "empty_summary", "summary", "empty or missing summary"),
    "long summary": (
        dict(text="short text", summary="a summary longer than the text"),
        "summary_ratio",
        "summary",
        "summary not shorter than text by the configured ratio",
    ),
    "truncated png": (
        dict(pages=[png_bytes(512, 512, noisy=True)[:30_000]]),
        "page_decode",
        "pages",
        "page 1 (tiny): does not decode as an image",
    ),
    "corrupt png": (
        dict(pages=[png_bytes(512, 512), flipped(png_bytes(512, 512, noisy=True))]),
        "page_decode",
        "pages",
        "page 2 (tiny): does not decode as an image",
    ),
    "decompression bomb": (dict(pages=[bomb_png()]), "page_decode", "pages", "decompression bomb"),
    "wrong image size": (
        dict(pages=[png_bytes(640, 640)]),
        "page_size",
        "pages",
        "page 1 (tiny): image is 640x640, expected 512x512",
    ),
    "wrong recorded size": (dict(page_width=640), "page_size", "page_width", "recorded page size 640x512"),
    "unknown mode": (dict(mode="huge"), "unknown_mode", "mode", "unknown mode 'huge'"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_bad_row_is_quarantined_with_reason(case, row, dataset, tmp_path):
    overrides, rule, field, needle = BAD_ROWS[case]
    rows = _good(row, 3) + [row(id="bad", **overrides)]
    outcome = _run(dataset, rows, tmp_path)
    assert (outcome.report.ingested, outcome.report.valid, outcome.report.quarantined) == (4, 3, 1)
    (entry,) = outcome.quarantine
    assert entry["id"] == "bad" and entry["rule"] == rule and entry["field"] == field
    assert needle in entry["reason"]
    assert "bad" not in {r["id"] for r in outcome.valid.iter_rows(columns=["id"])}
    assert outcome.report.success  # row problems quarantine, they do not fail the dataset


def test_one_bad_rendering_quarantines_the_whole_document(row, dataset, tmp_path):
    rows = _good(row, 2) + [
        row(id="multi", mode="tiny", text="the same text in every mode, long enough"),
        row(id="multi", mode="base", text="the same text in every mode, long enough", pages=[b"broken"]),
        row(id="multi", mode="small", text="the same text in every mode, long enough"),
    ]
    outcome = _run(dataset, rows, tmp_path)
    (entry,) = outcome.quarantine
    assert entry["id"] == "multi" and entry["mode"] == "base" and entry["modes"] == ["tiny", "base", "small"]
    assert (outcome.report.ingested, outcome.report.valid, outcome.report.quarantined) == (3, 2, 1)
    assert outcome.report.rows_valid == len(outcome.valid) == 2


def test_duplicate_id_keeps_the_first(row, dataset, tmp_path):
    rows = [
        row(id="dup", text="first text of the duplicated id"),
        row(id="other"),
        row(id="dup", split="test", text="second, different text with the same id"),
    ]
    outcome = _run(dataset, rows, tmp_path)
    (entry,) = outcome.quarantine
    assert entry["rule"] == "duplicate_id" and entry["split"] == "test"
    assert entry["reason"] == "duplicate id 'dup': first seen in split 'train', this later copy is quarantined"
    kept = {r["id"]: r["text"] for r in outcome.valid.iter_rows(columns=["id", "text"])}
    assert kept["dup"] == "first text of the duplicated id"
    unique = next(c for c in outcome.report.checks if c.name == "unique_ids")
    assert unique.level == "row" and not unique.success and unique.unexpected_count == 2


def test_exact_duplicate_row_is_a_duplicate(row, dataset, tmp_path):
    twin = row(id="twin")
    outcome = _run(dataset, [twin, dict(twin), row()], tmp_path)
    assert [q["rule"] for q in outcome.quarantine] == ["duplicate_id"]
    assert (outcome.report.ingested, outcome.report.valid) == (3, 2)


@pytest.mark.parametrize("split", ["test", "validation"])
def test_exact_leakage_quarantines_the_held_out_copy(split, row, dataset, tmp_path):
    text = "A paper about neural summarization of scientific articles."
    rows = [row(id="held", split=split, text=text), row(id="tr", split="train", text=text), row()]
    outcome = _run(dataset, rows, tmp_path)
    (entry,) = outcome.quarantine
    assert entry["id"] == "held" and entry["rule"] == "leakage" and entry["field"] == "text"
    assert entry["reason"] == f"train/{split} leakage: text duplicates train document 'tr' (exact match)"
    leak = next(c for c in outcome.report.checks if c.name == "no_train_test_leakage")
    assert leak.unexpected_count == 1


def test_normalized_leakage_can_be_switched_off(row, dataset, tmp_path):
    rows = [
        row(id="tr", text="Hello, World! This is   the text."),
        row(id="te", split="test", text="hello world this is the TEXT"),
    ]
    outcome = _run(dataset, rows, tmp_path)
    (entry,) = outcome.quarantine
    assert entry["id"] == "te"
    assert entry["reason"] == "train/test leakage: text duplicates train document 'tr' (normalized match)"

    off = _run(dataset, rows, tmp_path, ValidationConfig(normalized_leakage_check=False))
    assert off.quarantine == [] and off.report.valid == 2


def test_same_text_within_train_is_not_leakage(row, dataset, tmp_path):
    rows = [row(text="shared text of two train docs"), row(text="shared text of two train docs")]
    assert _run(dataset, rows, tmp_path).quarantine == []


def test_prior_rejects_count_as_ingested_and_quarantined(row, dataset, tmp_path):
    prior = [
        {"row": 7, "file": "data.jsonl", "field": "text", "reason": "invalid UTF-8"},
        {"id": "x9", "field": "summary", "reason": "missing column 'summary'"},
    ]
    outcome = _run(dataset, _good(row, 2) + [row(text="")], tmp_path, prior_rejects=prior)
    report = outcome.report
    assert (report.ingested, report.valid, report.quarantined) == (5, 2, 3)
    assert outcome.quarantine[0] == {
        "id": None,
        "split": None,
        "mode": None,
        "reason": "invalid UTF-8",
        "field": "text",
        "rule": "ingest",
        "stage": "ingest",
        "row": 7,
        "file": "data.jsonl",
    }
    assert "data.jsonl row 7" in render_report_html(report)


def test_truncated_fraction_fails_the_dataset_with_a_readable_message(row, dataset, tmp_path):
    rows = _good(row, 2) + _good(row, 2, truncated=True)
    outcome = _run(dataset, rows, tmp_path)
    report = outcome.report
    assert not report.success and report.truncated == 2
    assert report.valid == 4 and report.quarantined == 0  # dataset-level problems do not quarantine
    with pytest.raises(DataValidationError) as info:
        raise_for_failure(report)
    assert info.value.exit_code == 3
    message = str(info.value)
    assert message.splitlines()[0].startswith("data validation failed: 1 dataset-level check(s) failed")
    assert "truncated_fraction: observed 0.5000, required <= 0.05" in message


def test_missing_glyph_fraction_fails_and_lists_code_points(row, dataset, tmp_path):
    rows = _good(row, 3) + [row(id="cjk", missing_glyphs=[0x4E2D, 0x6587])]
    outcome = _run(dataset, rows, tmp_path)
    assert not outcome.report.success
    assert outcome.report.missing_glyphs == [
        {"id": "cjk", "split": "train", "code_points": ["U+4E2D", "U+6587"], "characters": "中文"}
    ]
    assert "missing_glyph_fraction: observed 0.2500, required <= 0.02" in outcome.report.failures[0]
    relaxed = _run(dataset, rows, tmp_path, ValidationConfig(max_missing_glyph_fraction=0.25))
    assert relaxed.report.success


def test_too_few_valid_documents_fails(row, dataset, tmp_path):
    outcome = _run(dataset, [row(text=""), row(summary="")], tmp_path)
    assert (outcome.report.valid, outcome.report.quarantined) == (0, 2)
    assert len(outcome.valid) == 0
    assert not outcome.report.success
    assert outcome.report.failures == ["min_valid_documents: observed 0, required >= 1 (enough valid documents remain)"]


def test_html_report_shows_failing_check_and_quarantine(row, dataset, tmp_path):
    rows = _good(row, 2, truncated=True) + [row(id="<script>x</script>", text="")]
    report = _run(dataset, rows, tmp_path).report
    html = render_report_html(report)
    assert html.startswith("<!DOCTYPE html>") and "FAILED" in html
    assert "<tr class='fail'><td>truncated_fraction</td>" in html
    assert "empty or whitespace-only text" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    assert "<link" not in html and "src=" not in html  # self-contained
    report.context = {"run": "data-2026_11_30 (42)", "data source": "papers.csv", "modes": "tiny"}
    headed = render_report_html(report)
    for key, value in report.context.items():
        assert f"<tr><th>{key}</th><td>{value}</td></tr>" in headed


def test_report_round_trips_through_json(row, dataset, tmp_path):
    outcome = _run(dataset, _good(row, 2) + [row(pages=[b"junk"])], tmp_path)
    data = json.loads(json.dumps(outcome.to_dict()))
    assert data["valid_path"].endswith("out") and len(data["quarantine"]) == 1
    again = ValidationReport.from_dict(json.loads(json.dumps(outcome.report.to_dict())))
    assert again == ValidationReport.from_dict(outcome.report.to_dict())
    assert again.checks[0].name == outcome.report.checks[0].name


def test_valid_manifest_keeps_render_metadata_for_valid_documents(row, tmp_path):
    rows = [row(id="ok", truncated=True), row(id="bad", text="", truncated=True, missing_glyphs=[0x4E2D])]
    ds = write_dataset(
        tmp_path / "rendered",
        rows,
        settings={"modes": ["tiny"]},
        extra={
            "font": {"name": "Noto Sans"},
            "truncated": ["ok", "bad"],
            "missing_glyph_documents": [{"id": "bad", "code_points": [0x4E2D]}],
        },
    )
    manifest = validate_dataset(ds, ValidationConfig(), tmp_path / "out").valid.manifest
    assert manifest["settings"] == {"modes": ["tiny"]} and manifest["font"] == {"name": "Noto Sans"}
    assert manifest["truncated"] == ["ok"] and manifest["missing_glyph_documents"] == []
    assert manifest["rows"] == 1 and manifest["validation"]["quarantined"] == 1


def test_rerun_replaces_previous_output(row, dataset, tmp_path):
    _run(dataset, _good(row, 5), tmp_path)
    outcome = _run(dataset, _good(row, 1), tmp_path)
    assert len(outcome.valid) == 1 and len(outcome.valid.shard_paths) == 1
    assert len(list((tmp_path / "out" / "shards").iterdir())) == 1


def test_refuses_to_overwrite_its_input(row, tmp_path):
    ds = write_dataset(tmp_path / "out", _good(row, 1))
    with pytest.raises(ValueError, match="overwrite"):
        validate_dataset(ds, ValidationConfig(), tmp_path / "out")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        validate_dataset(ds, ValidationConfig(), tmp_path / "other")
