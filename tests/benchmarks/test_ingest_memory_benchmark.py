"""benchmarks.ingest_memory: both sides run on a small file, nothing is lost, and its BENCHMARKS.md row renders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # benchmarks/ is a top-level package, not installed
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.ingest_memory import report_rows, run  # noqa: E402


def test_a_small_run_counts_every_row_and_renders_its_row(tmp_path):
    rows = 2002  # lone surrogates at rows 1,000 and 2,000, invalid JSON at rows 1,001 and 2,001
    result = run(rows, 512, tmp_path, bad_every=1000)
    streamed = result["sides"]["streamed"]
    assert (streamed["accepted"], streamed["rejected"], result["bad_rows"], result["rows_lost"]) == (rows - 4, 4, 4, 0)
    assert result["sides"]["all_rows_at_once"]["content_hash"] == streamed["content_hash"]
    ((what, command, baseline, outcome),) = report_rows(result)
    assert command == "python -m benchmarks.ingest_memory" and f"{rows:,} tiny JSONL rows" in what
    assert "batch = all rows" in baseline and f"accepted {rows - 4:,} + rejected 4 = {rows:,}" in outcome


def test_the_recorded_result_meets_the_goal():
    result = json.loads((ROOT / "benchmarks" / "results" / "ingest_memory.json").read_text())
    assert result["rows"] == 1_000_000 and result["goal_met"] and result["rows_lost"] == 0
    assert result["sides"]["streamed"]["peak_rss_mb"] <= result["goal_mb"]
    assert report_rows(result)[0][3].endswith("nothing lost: met)")
