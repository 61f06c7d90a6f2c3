"""Incremental rendering for retraining: a source that gained 5% new documents renders only those.

    python -m benchmarks.incremental [--documents 1000] [--growth 0.05] [--mode base]

Three renders in one process, each into a fresh dataset folder: (1) the original documents with an
empty page cache, (2) the grown source with that cache, (3) the grown source with no cache (the
full render a retraining run would otherwise do). Prints pages rendered and time for (2) against
(3); writes benchmarks/results/incremental.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from benchmarks.common import english_documents, write_result


def _documents(count: int) -> list[dict]:
    base = english_documents(200, chars=1500)
    return [
        {
            **base[i % len(base)],
            "id": f"doc-{i}",
            "text": f"Document {i}. {base[i % len(base)]['text']}",
            "summary": f"Summary of {i}.",
        }
        for i in range(count)
    ]


def _render(docs: list[dict], mode: str, out: str, cache_dir: str | None) -> dict:
    from deepsynth.data.generator import render_dataset
    from deepsynth.rendering.config import RenderSettings

    settings = RenderSettings(modes=[mode], max_pages=2, page_cache=cache_dir is not None)
    start = time.perf_counter()
    manifest = render_dataset(docs, settings, out, total=len(docs), cache_dir=cache_dir).manifest
    seconds = time.perf_counter() - start
    served = manifest["rows_from_cache"]
    return {
        "documents": len(docs),
        "rows_rendered": len(docs) - served,
        "rows_from_cache": served,
        "pages": manifest["pages"],
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000, help="documents in the original source")
    parser.add_argument("--growth", type=float, default=0.05, help="fraction of new documents in the retraining source")
    parser.add_argument("--mode", default="base")
    args = parser.parse_args()
    grown = _documents(round(args.documents * (1 + args.growth)))
    with tempfile.TemporaryDirectory(prefix="deepsynth-bench-") as tmp:
        first = _render(grown[: args.documents], args.mode, f"{tmp}/first", f"{tmp}/cache")
        incremental = _render(grown, args.mode, f"{tmp}/incremental", f"{tmp}/cache")
        full = _render(grown, args.mode, f"{tmp}/full", None)
    speedup = full["seconds"] / incremental["seconds"]
    for name, r in (("first run", first), ("incremental", incremental), ("full render", full)):
        print(
            f"{name:>12}: {r['documents']} docs, {r['rows_rendered']} rendered, {r['rows_from_cache']} from cache, "
            f"{r['seconds']} s"
        )
    print(
        f"retraining render with the page cache: {speedup:.1f}x faster than a full render, "
        f"{incremental['rows_rendered']} of {incremental['documents']} documents rendered"
    )
    path = write_result(
        "incremental",
        {
            "mode": args.mode,
            "growth": args.growth,
            "first": first,
            "incremental": incremental,
            "full": full,
            "speedup": round(speedup, 2),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
