"""Peak memory against input size for one huge single-line document: `deepsynth render` and `deepsynth data`.

    python -m benchmarks.large_document [--sizes-mb 25 50 100 200] [--pipeline-sizes-mb 25 100] [--before REF]

Each size is one JSONL row whose text is that many MB of English words with no newline. Every
command runs in a fresh process under a small wrapper that reports the peak RSS of its largest
process (render workers included). The baseline, measured in the same run, is the same command
on a one-sentence document: the figure that matters is (peak - baseline) / input size, which stays
flat when memory is bounded by a constant multiple of the document. `deepsynth data` runs the
ZenML data pipeline (ingest, render, validate) on a fresh store; its data-quality gate fails on a
truncated document (exit 3), which does not matter here. ``--before REF`` also measures the code of
git commit REF (checked out into a temporary worktree, run with this environment) on the same inputs.
Writes benchmarks/results/large_document.json.
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

from benchmarks.common import write_result

PEAK_RSS = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
    "stderr=subprocess.DEVNULL).returncode; print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
)
MB = 1_000_000


def write_document(path: Path, chars: int) -> None:
    """One JSONL row: ``chars`` characters of English words on a single line."""
    words = "the model reads pages of text and writes a short summary for each document in the set".split()
    sentence = " ".join(words[(i * 7) % len(words)] for i in range(2000)) + " "
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('{"id": "big", "summary": "A short summary.", "text": "')
        left = chars
        while left > 0:
            piece = sentence[: min(left, len(sentence))]
            handle.write(piece)
            left -= len(piece)
        handle.write('"}\n')


def measure(command: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Run ``command`` in ``cwd``; its exit code, wall time and peak RSS (MiB) of its largest process."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *command], capture_output=True, text=True, env=env, check=True, cwd=cwd
    )
    code, peak = out.stdout.split()
    return {
        "exit_code": int(code),
        "wall_s": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(float(peak), 1),
    }


def side(name: str, sizes: list[int], tmp: Path, command, code: Path | None = None) -> dict:
    """The baseline and every size for one command; ``command(source, run_dir)`` gives its argv.
    ``code``: a checkout whose packages are imported instead of this one's."""
    env = {**os.environ, "ZENML_ANALYTICS_OPT_IN": "false", "HF_HUB_OFFLINE": "1"}
    code = code or Path(__file__).parents[1]
    env["PYTHONPATH"] = str(code)  # with `python -m`, the working directory comes first on sys.path: run in `code` too

    def run(source: Path, label: str) -> dict[str, float]:
        run_dir = tmp / f"{name}-{label}"
        run_dir.mkdir()
        return measure(
            command(source, run_dir),
            {**env, "DEEPSYNTH_HOME": str(run_dir / "home"), "ZENML_CONFIG_PATH": str(run_dir / "zenml")},
            code,
        )

    small = tmp / "small.jsonl"
    if not small.exists():
        write_document(small, 200)
    baseline = run(small, "baseline")
    print(f"{name} baseline: {baseline}", flush=True)
    points = []
    for size in sizes:
        source = tmp / f"doc-{size}mb.jsonl"
        write_document(source, size * MB)
        point = {"input_mb": size, **run(source, f"{size}mb")}
        point["growth_per_input_mb"] = round((point["peak_rss_mb"] - baseline["peak_rss_mb"]) / size, 2)
        print(f"{name} {size} MB: {point}", flush=True)
        points.append(point)
        source.unlink()
    return {"baseline": baseline, "points": points}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--pipeline-sizes-mb", type=int, nargs="*", default=[25, 100])
    parser.add_argument(
        "--before", default=None, help="Also measure this git commit's code (e.g. the one before a fix)"
    )
    args = parser.parse_args()
    cli = [sys.executable, "-m", "deepsynth_cli"]

    def render(src: Path, d: Path) -> list[str]:
        return [*cli, "render", str(src), "--out", str(d / "out"), "--mode", "tiny"]

    def data(src: Path, d: Path) -> list[str]:
        return [*cli, "data", str(src), "--mode", "tiny", "--set", "validate.min_valid_rows=1"]

    sides = {}
    with tempfile.TemporaryDirectory(prefix="deepsynth-large-doc-") as tmp:
        root = Path(__file__).parents[1]
        runs = [("", None)]
        if args.before:
            before = Path(tmp) / "before"
            subprocess.run(
                ["git", "-C", str(root), "worktree", "add", "--detach", str(before), args.before],
                check=True,
                capture_output=True,
            )
            runs.append(("before_", before))
        try:
            for prefix, code in runs:
                sides[prefix + "render"] = side(prefix + "render", args.sizes_mb, Path(tmp), render, code)
                if args.pipeline_sizes_mb:
                    sides[prefix + "data_pipeline"] = side(
                        prefix + "data_pipeline", args.pipeline_sizes_mb, Path(tmp), data, code
                    )
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(before)], check=False)
    path = write_result("large_document", {"mode": "tiny", "max_pages": 4, "before": args.before, "sides": sides})
    print(json.dumps(sides, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
