"""Scale: rendering + validating 1,000 → 10,000 documents keeps memory flat and time linear.

    python -m benchmarks.scale [--sizes 1000 2500 5000 10000] [--mode tiny]

Each size runs in a fresh process (peak RSS is that process's own; render workers are
reported separately). Prints both curves, writes benchmarks/results/scale.json and scale.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

from benchmarks.common import RESULTS, english_documents, peak_rss_mb, write_result


def _measure(size: int, mode: str) -> dict:
    from deepsynth.rendering.dataset import render_dataset
    from deepsynth.rendering.renderer import RenderSettings
    from deepsynth.validation import ValidationConfig, validate_dataset

    base = english_documents(200, chars=1500)
    splits = ("train", "validation", "test")

    def docs():  # generated lazily: the input is never held in memory either
        for i in range(size):
            d = base[i % len(base)]
            yield {**d, "id": f"doc-{i}", "split": splits[i % 3], "text": f"Document {i}. {d['text']}", "summary": f"Summary of {i}."}

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        rendered = render_dataset(docs(), RenderSettings(modes=[mode], max_pages=2, page_cache=False), f"{tmp}/r", total=size)
        render_s = time.perf_counter() - start
        start = time.perf_counter()
        outcome = validate_dataset(rendered, ValidationConfig(max_truncated_fraction=1.0), f"{tmp}/v")
        validate_s = time.perf_counter() - start
    return {
        "documents": size,
        "pages": rendered.manifest["pages"],
        "valid": outcome.report.valid,
        "render_s": round(render_s, 2),
        "validate_s": round(validate_s, 2),
        "total_s": round(render_s + validate_s, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "worker_peak_rss_mb": round(peak_rss_mb(children=True), 1),
    }


def _plot(points: list[dict]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [p["documents"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    left.plot(sizes, [p["total_s"] for p in points], marker="o", label="render + validate")
    left.plot(sizes, [p["render_s"] for p in points], marker=".", label="render")
    left.set(xlabel="documents", ylabel="seconds", title="Time (should be linear)")
    left.legend()
    right.plot(sizes, [p["peak_rss_mb"] for p in points], marker="o", label="main process")
    right.plot(sizes, [p["worker_peak_rss_mb"] for p in points], marker=".", label="render worker")
    right.set(xlabel="documents", ylabel="peak RSS (MiB)", title="Memory (should be flat)", ylim=(0, None))
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = RESULTS / "scale.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2500, 5000, 10000])
    parser.add_argument("--mode", default="tiny")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_measure(args.one, args.mode)))
        return
    points = []
    for size in args.sizes:
        out = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--one", str(size), "--mode", args.mode],
                             check=True, capture_output=True, text=True).stdout
        points.append(json.loads(out.strip().splitlines()[-1]))
        p = points[-1]
        print(f"{p['documents']:>6} docs: {p['pages']} pages, render {p['render_s']} s + validate {p['validate_s']} s, "
              f"peak RSS {p['peak_rss_mb']} MiB (worker {p['worker_peak_rss_mb']} MiB)")
    small, large = points[0], points[-1]
    rss_growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
    per_doc_small, per_doc_large = small["total_s"] / small["documents"], large["total_s"] / large["documents"]
    print(f"peak RSS {large['documents']} vs {small['documents']} docs: {rss_growth:+.1%} (goal within 10%)")
    print(f"time per document: {per_doc_small * 1000:.1f} ms → {per_doc_large * 1000:.1f} ms (ratio {per_doc_large / per_doc_small:.2f}, linear = 1.0)")
    plot = _plot(points)
    path = write_result("scale", {"mode": args.mode, "points": points, "rss_growth": round(rss_growth, 4),
                                  "time_per_doc_ratio": round(per_doc_large / per_doc_small, 3), "plot": plot})
    print(f"wrote {path} and {plot}")


if __name__ == "__main__":
    main()
