"""Peak memory of ingest against the row count: 1,000,000 tiny JSONL rows, streamed in batches vs all rows at once.

    python -m benchmarks.ingest_memory [--rows 1000000] [--batch-rows 4096]

What is measured is the ingest step's work: ``deepsynth.data.ingest.ingest`` on a local JSONL file,
then what its materializer does with the result (``metadata()``: content hash and rows per split;
``save()``: Parquet + JSON), each side in a fresh process that reports its own peak RSS. The baseline,
in the same run, is the same code with the batch size set to all rows (every row held as a Python
dict before any Arrow column exists: how ingest worked before issue 27), plus the fixed cost of the
imports on a one-row file. One row in 100,000 is bad (a lone surrogate, or invalid JSON), and the
accepted and rejected counts must add up to the input rows. Goal (issue 27): ≤ 500 MB peak RSS for
1,000,000 rows. Writes benchmarks/results/ingest_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

GOAL_MB = 500
BAD_EVERY = 100_000


def write_rows(path: Path, rows: int, bad_every: int = BAD_EVERY) -> None:
    """``rows`` tiny JSONL documents; every ``bad_every``-th a lone surrogate, the next one invalid JSON."""
    with open(path, "w", encoding="ascii") as handle:
        for i in range(1, rows + 1):
            if i % bad_every == 0:
                handle.write(f'{{"id": "d{i}", "text": "Lone \\ud800 surrogate.", "summary": "S{i}."}}\n')
            elif i % bad_every == 1 and i > 1:
                handle.write(f'{{"id": "d{i}", "text": "Unclosed\n')
            else:
                handle.write(f'{{"id": "d{i}", "text": "Doc {i} text.", "summary": "S{i}."}}\n')


CHILD = """
import json, sys, time
start = time.perf_counter()


def peak_kib():
    # VmHWM belongs to this image; ru_maxrss survives exec and can be the forking parent's peak
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


from deepsynth.data.config import IngestConfig
from deepsynth.data.ingest import ingest
path, batch_rows, out = sys.argv[1], sys.argv[2], sys.argv[3]
docs = ingest(IngestConfig(source="file", path=path), batch_rows=None if batch_rows == "all" else int(batch_rows))
meta = docs.metadata()
docs.save(out)
print(json.dumps({
    "accepted": docs.table.num_rows, "rejected": len(docs.rejects), "content_hash": meta["content_hash"],
    "rows_per_split": meta["rows_per_split"], "wall_s": round(time.perf_counter() - start, 2),
    "peak_rss_mb": round(peak_kib() / 1024, 1),
}))
"""


def measure(source: Path, batch_rows: str, out: Path) -> dict[str, Any]:
    """Ingest ``source`` in a fresh process; its counts, content hash, wall time and peak RSS (MiB)."""
    # a bare environment: nothing the caller's process set (a test session's variables) changes what loads
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), batch_rows, str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"ingest of {source} (batch {batch_rows}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(rows: int, batch_rows: int, tmp: Path, bad_every: int = BAD_EVERY) -> dict[str, Any]:
    """Both sides and the imports-only figure on one generated file of ``rows`` rows."""
    source, one = tmp / "rows.jsonl", tmp / "one.jsonl"
    write_rows(source, rows, bad_every)
    write_rows(one, 1)
    imports = measure(one, str(batch_rows), tmp / "out-one")
    print(f"imports and one row: {imports['peak_rss_mb']} MiB", file=sys.stderr)
    streamed = measure(source, str(batch_rows), tmp / "out-streamed")
    print(f"batches of {batch_rows:,}: {streamed['peak_rss_mb']} MiB, {streamed['wall_s']} s", file=sys.stderr)
    at_once = measure(source, "all", tmp / "out-all")
    print(f"all rows at once: {at_once['peak_rss_mb']} MiB, {at_once['wall_s']} s", file=sys.stderr)
    if streamed["content_hash"] != at_once["content_hash"]:
        raise SystemExit("the two sides ingested different documents")
    lost = rows - streamed["accepted"] - streamed["rejected"]
    return {
        "rows": rows,
        "input_mb": round(source.stat().st_size / 1e6, 1),
        "bad_rows": rows // bad_every + max(0, (rows - 1) // bad_every),
        "batch_rows": batch_rows,
        "goal_mb": GOAL_MB,
        "goal_met": streamed["peak_rss_mb"] <= GOAL_MB and lost == 0,
        "rows_lost": lost,
        "ratio_vs_all_rows": round(streamed["peak_rss_mb"] / at_once["peak_rss_mb"], 3),
        "sides": {"imports_one_row": imports, "streamed": streamed, "all_rows_at_once": at_once},
    }


def report_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """BENCHMARKS.md rows (what, command, baseline, result) for ``benchmarks/results/ingest_memory.json``."""
    sides = result["sides"]
    streamed, at_once = sides["streamed"], sides["all_rows_at_once"]
    goal = "met" if result["goal_met"] else "**not met**"
    return [
        (
            f"Ingest peak RSS, {result['rows']:,} tiny JSONL rows ({result['input_mb']} MB, {result['bad_rows']} bad "
            "rows), ingest + content hash + Parquet save, fresh process",
            "python -m benchmarks.ingest_memory",
            f"all rows held as dicts (batch = all rows): {at_once['peak_rss_mb']:.0f} MiB, {at_once['wall_s']} s; "
            f"imports + one row: {sides['imports_one_row']['peak_rss_mb']:.0f} MiB",
            f"batches of {result['batch_rows']:,} rows: {streamed['peak_rss_mb']:.0f} MiB "
            f"(**{result['ratio_vs_all_rows']}x**), {streamed['wall_s']} s; accepted {streamed['accepted']:,} + "
            f"rejected {streamed['rejected']:,} = {streamed['accepted'] + streamed['rejected']:,} "
            f"(goal ≤ {result['goal_mb']} MB, nothing lost: {goal})",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=None, help="default: deepsynth.data.ingest.BATCH_ROWS")
    args = parser.parse_args()
    if args.batch_rows is None:
        from deepsynth.data.ingest import BATCH_ROWS

        args.batch_rows = BATCH_ROWS
    with tempfile.TemporaryDirectory(prefix="ingest-memory-") as tmp:
        started = time.perf_counter()
        result = run(args.rows, args.batch_rows, Path(tmp))
        result["total_wall_s"] = round(time.perf_counter() - started, 1)
    path = write_result("ingest_memory", result)
    for what, command, baseline, outcome in report_rows(result):
        print(f"{what}\n  {command}\n  baseline: {baseline}\n  result:   {outcome}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
