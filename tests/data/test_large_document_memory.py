"""A document of tens of MB on a single line is ingested and rendered in memory that is a small multiple of
its size (it was twelve times its size, most of it spent laying out pages that could never be drawn)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
INPUT_MB = 40
MAX_GROWTH_PER_INPUT_MB = 6  # peak RSS above a one-line document's, per MB of input; measured 4.9, before 12

# Runs the command as its only child and prints that child's peak RSS (the largest of its processes) in MiB.
PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
)


def write_document(path: Path, chars: int) -> None:
    words = "the model reads pages of text and writes a short summary for each document in the set ".split(" ")
    sentence = " ".join(words[(i * 7) % len(words)] for i in range(2000)) + " "
    text = (sentence * (chars // len(sentence) + 1))[:chars]
    path.write_text(json.dumps({"id": "big", "text": text, "summary": "A short summary."}) + "\n")


def render_peak_mb(source: Path, out: Path, home: Path) -> float:
    command = [
        sys.executable,
        "-m",
        "deepsynth_cli",
        "render",
        str(source),
        "--out",
        str(out),
        "--mode",
        "tiny",
        "--json",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *command],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DEEPSYNTH_HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return float(proc.stdout.strip())


def test_a_40_mb_single_line_document_renders_in_a_small_multiple_of_its_size(tmp_path):
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    write_document(small, 200)
    write_document(big, INPUT_MB * 1_000_000)
    baseline = render_peak_mb(small, tmp_path / "small-out", tmp_path / "home")
    peak = render_peak_mb(big, tmp_path / "big-out", tmp_path / "home")
    assert peak - baseline < MAX_GROWTH_PER_INPUT_MB * INPUT_MB, (baseline, peak)
    manifest = json.loads((tmp_path / "big-out" / "manifest.json").read_text())
    assert manifest["truncated"] == ["big"] and manifest["pages"] == 4  # render.max_pages
    from deepsynth.data.rendered import RenderedDataset

    (row,) = RenderedDataset(tmp_path / "big-out").iter_rows(columns=["chars_total", "chars_rendered"])
    assert row["chars_total"] == INPUT_MB * 1_000_000 and 0 < row["chars_rendered"] < 100_000
