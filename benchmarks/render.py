"""Rendering speed: DeepSynth's renderer vs the original TextToImageConverter, same texts, one run.

    python -m benchmarks.render [--docs 240]

Each side runs in its own fresh process so its peak RSS is its own. Prints pages/s, peak RSS
and the speed ratio; writes benchmarks/results/render.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchmarks.common import english_documents, peak_rss_mb, write_result


def _run_side(side: str, docs: int) -> dict:
    """Measure one side (``legacy`` or ``deepsynth``) in this process."""
    texts = english_documents(docs)
    if side == "legacy":
        from benchmarks.legacy_renderer import LegacyTextToImageConverter

        converter = LegacyTextToImageConverter()
        start = time.perf_counter()
        pages = sum(1 for doc in texts if converter.to_png(doc["text"]))
        seconds = time.perf_counter() - start
    else:
        from deepsynth.rendering.config import RenderSettings
        from deepsynth.rendering.renderer import render_documents, worker_count

        settings = RenderSettings(modes=["base"], max_pages=None)
        start = time.perf_counter()
        pages = sum(len(row["pages"]) for row in render_documents(texts, settings))
        seconds = time.perf_counter() - start
    return {
        "side": side,
        "documents": docs,
        "pages": pages,
        "seconds": round(seconds, 3),
        "pages_per_s": round(pages / seconds, 2),
        "peak_rss_mb": round(max(peak_rss_mb(), peak_rss_mb(children=True)), 1),
        "workers": 1 if side == "legacy" else worker_count(RenderSettings()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=240, help="documents of ~3,000 characters per side")
    parser.add_argument("--side", choices=["legacy", "deepsynth"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(_run_side(args.side, args.docs)))
        return
    sides = {}
    for side in ("legacy", "deepsynth"):
        out = subprocess.run([sys.executable, "-m", "benchmarks.render", "--side", side, "--docs", str(args.docs)],
                             check=True, capture_output=True, text=True).stdout
        sides[side] = json.loads(out.strip().splitlines()[-1])
        s = sides[side]
        print(f"{side:>10}: {s['pages']} pages in {s['seconds']} s = {s['pages_per_s']} pages/s, "
              f"peak RSS {s['peak_rss_mb']} MiB, {s['workers']} process(es)")
    ratio = sides["deepsynth"]["pages_per_s"] / sides["legacy"]["pages_per_s"]
    print(f"speed ratio deepsynth/legacy: {ratio:.2f}x (goal >= 4x)")
    path = write_result("render", {"mode": "base", "doc_chars": 3000, "sides": sides, "ratio": round(ratio, 2), "goal": 4.0})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
