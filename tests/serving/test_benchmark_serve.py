"""``python -m benchmarks.serve`` runs every path (both sides, streaming, LRU churn, the hot swap) on the tiny
profile, and its report rows render."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # benchmarks/ is a top-level package, not installed
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.mark.slow
def test_the_serving_benchmark_runs_end_to_end_on_the_tiny_profile():
    from benchmarks.serve import main, report_rows

    # In this process (its servers are processes of their own, as always): no second start-up of torch and mlflow.
    main(["--requests", "4", "--concurrency", "1,2", "--max-new-tokens", "2", "--out", "serve_smoke"])
    result = json.loads((ROOT / "benchmarks" / "results" / "serve_smoke.json").read_text())
    for side in ("sequential", "batched"):
        for level in ("1", "2"):
            figures = result["sides"][side]["levels"][level]
            assert figures["failed"] == 0 and figures["requests"] == 4 and figures["requests_per_s"] > 0
            assert 1 <= figures["mean_batch"] <= (1 if side == "sequential" else int(level))
    swap = result["sides"]["batched"]["hot_swap"]
    assert swap["swap_s"] > 0 and swap["all"]["failed"] == 0
    assert set(result["batched_vs_sequential"]) == {"1", "2"}
    streaming = result["sides"]["batched"]["streaming"]
    assert set(streaming) == {"1", "2"} and all(x["failed"] == 0 for x in streaming.values())
    assert all(0 < x["first_token_p50_ms"] <= x["complete_p50_ms"] for x in streaming.values())
    churn = result["churn"]
    assert churn["failed"] == 0 and churn["requests"] == 4 and churn["loads_on_demand"] == 4 and churn["evictions"] >= 2

    rows = report_rows(result)
    assert len(rows) == 2 + 2 + 1 + 1 and all(len(row) == 4 and all(row) for row in rows)
