"""Scale: rendering + validating 1,000 → 10,000 documents keeps memory flat and time linear.

    python -m benchmarks.scale [--sizes 1000 2500 5000 10000] [--mode tiny] [--repeat 2]

Each size runs in a fresh process (peak RSS is that process's own; render workers are
reported separately), ``--repeat`` times; the fastest run of each size is kept (shared machines
are noisy, and noise only ever adds time). Prints both curves, writes benchmarks/results/scale.json and scale.png.
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
    from deepsynth.data.generator import render_dataset
    from deepsynth.rendering.config import RenderSettings
    from deepsynth.validation import ValidationConfig, validate_dataset

    base = english_documents(200, chars=1500)
    splits = ("train", "validation", "test")

    def docs():  # generated lazily: the input is never held in memory either
        for i in range(size):
            d = base[i % len(base)]
            yield {
                **d,
                "id": f"doc-{i}",
                "split": splits[i % 3],
                "text": f"Document {i}. {d['text']}",
                "summary": f"Summary of {i}.",
            }

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        rendered = render_dataset(
            docs(), RenderSettings(modes=[mode], max_pages=2, page_cache=False), f"{tmp}/r", total=size
        )
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


def _linear_fit(xs: list[float], ys: list[float]) -> dict:
    """Least-squares ``y = intercept + slope * x`` and its R^2."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    intercept = my - slope * mx
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    total = sum((y - my) ** 2 for y in ys) or 1.0
    return {
        "intercept_s": round(intercept, 3),
        "ms_per_doc": round(slope * 1000, 3),
        "r2": round(1 - residual / total, 5),
    }


def _marginal_ms(a: dict, b: dict) -> float:
    return (b["total_s"] - a["total_s"]) / (b["documents"] - a["documents"]) * 1000


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
    parser.add_argument("--repeat", type=int, default=2, help="runs per size; the fastest is kept")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_measure(args.one, args.mode)))
        return
    points = []
    for size in args.sizes:
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.scale", "--one", str(size), "--mode", args.mode],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        points.append(min(runs, key=lambda r: r["total_s"]))
        p = points[-1]
        print(
            f"{p['documents']:>6} docs: {p['pages']} pages, render {p['render_s']} s + validate {p['validate_s']} s, "
            f"peak RSS {p['peak_rss_mb']} MiB (worker {p['worker_peak_rss_mb']} MiB)"
        )
    small, large = points[0], points[-1]
    rss_growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
    fit = _linear_fit([p["documents"] for p in points], [p["total_s"] for p in points])
    # Marginal cost per document over the last interval against the first: 1.0 when time is linear.
    first_ms = _marginal_ms(points[0], points[1])
    last_ms = _marginal_ms(points[-2], points[-1])
    print(f"peak RSS {large['documents']} vs {small['documents']} docs: {rss_growth:+.1%} (goal within 10%)")
    print(
        f"time = {fit['intercept_s']:.2f} s + {fit['ms_per_doc']:.2f} ms x documents (R^2 {fit['r2']:.4f}); marginal "
        f"cost per document {first_ms:.2f} ms → {last_ms:.2f} ms (ratio {last_ms / first_ms:.2f}, linear = 1.0)"
    )
    plot = _plot(points)
    path = write_result(
        "scale",
        {
            "mode": args.mode,
            "points": points,
            "rss_growth": round(rss_growth, 4),
            "linear_fit": fit,
            "marginal_ms_per_doc": [round(first_ms, 3), round(last_ms, 3)],
            "marginal_ratio": round(last_ms / first_ms, 3),
            "plot": plot,
        },
    )
    print(f"wrote {path} and {plot}")


if __name__ == "__main__":
    main()
