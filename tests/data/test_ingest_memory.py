"""Issue 27, item 11: ingest memory follows the batch size, not the row count (1,000,000 tiny rows took 3.16 GB
when every row was held as a Python dict). Peak RSS of a fresh process at two row counts; nothing is lost."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # benchmarks/ is a top-level package, not installed
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.ingest_memory import measure, write_rows  # noqa: E402

pytestmark = pytest.mark.slow
SMALL, LARGE = 70_000, 140_000  # both above a Parquet row group (65,536 rows), whose buffer is bounded
BATCH = "4096"
#: Peak RSS per row, in bytes: measured ~160 in batches (a tiny row's Arrow columns take ~60), ~3,000 and more
#: with every row held as dicts first.
MAX_BYTES_PER_ROW = 400
MIN_BYTES_PER_ROW_ALL_AT_ONCE = 1_000


def _bytes_per_row(fewer: dict, more: dict, rows: int) -> float:
    return (more["peak_rss_mb"] - fewer["peak_rss_mb"]) * 2**20 / rows


def test_ingest_peak_memory_follows_the_batch_not_the_row_count_and_nothing_is_lost(tmp_path):
    for rows in (SMALL, LARGE):
        write_rows(tmp_path / f"{rows}.jsonl", rows)
    small = measure(tmp_path / f"{SMALL}.jsonl", BATCH, tmp_path / "out-small")
    large = measure(tmp_path / f"{LARGE}.jsonl", BATCH, tmp_path / "out-large")
    assert _bytes_per_row(small, large, LARGE - SMALL) < MAX_BYTES_PER_ROW, (small, large)
    # row 100,000 holds a lone surrogate, row 100,001 is invalid JSON: rejected, counted, not lost
    assert (large["accepted"], large["rejected"]) == (LARGE - 2, 2)
    assert (small["accepted"], small["rejected"]) == (SMALL, 0)
    assert sum(large["rows_per_split"].values()) == LARGE - 2
    # the same measurement sees the rows when every one is gathered as a dict first (the code before the fix)
    at_once = measure(tmp_path / f"{LARGE}.jsonl", "all", tmp_path / "out-all")
    assert _bytes_per_row(small, at_once, LARGE - SMALL) > MIN_BYTES_PER_ROW_ALL_AT_ONCE, (small, at_once)
    assert at_once["content_hash"] == large["content_hash"]  # batching changes nothing in the result
