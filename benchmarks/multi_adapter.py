"""Several adapters in one run vs one run per adapter: the train step alone and the whole pipeline.

    python -m benchmarks.multi_adapter [--adapters 4] [--skip-pipeline | --pipeline-only]

Train step alone (each measurement in a fresh process, so its peak RSS is its own): one adapter;
K adapters trained one after the other in K processes (each loads the base and encodes every page);
K adapters in one MultiAdapterTrainer, ``sequential`` and ``mixed``. The K adapters differ only in
their seed, on the same data (rendered ACLSum text, tiny profile, CPU). Whole pipeline: K
``deepsynth run``s of the scaled-down quickstart (different seeds) against one run with
``train.sweep={seed: [...]}``, in the same process tree and one fresh home, after one data-only run
(so every measured run finds the data steps cached, as a user's second run would). Writes
benchmarks/results/multi_adapter.json (``--pipeline-only`` prints its figures and writes nothing).
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

ROOT = Path(__file__).parents[1]
CONFIG = ROOT / "configs" / "quickstart.yaml"
GOALS = {"pipeline_speedup": 2.5, "train_step_speedup": 1.5, "rss_ratio": 1.3}
PIPELINE_SET = [
    "ingest.max_documents=8",
    "validate.min_valid_rows=3",
    "render.max_pages=1",
    "train.num_epochs=2",
    "evaluate.max_documents=2",
    "evaluate.generation.max_new_tokens=8",
    "register.promote=false",
]


def _worker(config_path: str, dataset: str, out: str) -> None:
    """Train one config in this process; write wall (after imports), tokens/s and peak RSS."""
    import torch

    torch.set_num_threads(1)
    from benchmarks.common import peak_rss_mb
    from deepsynth.training.config import TrainerConfig
    from deepsynth.training.multi_adapter import make_trainer

    config = TrainerConfig.from_json(config_path)
    start = time.perf_counter()
    metrics, _ = make_trainer(config).train(dataset)
    wall = time.perf_counter() - start
    per = metrics.get("adapters") or {"single": metrics}
    tokens = sum(m["tokens_per_second"] * m["train_runtime_s"] for m in per.values())
    runtimes = [m["train_runtime_s"] for m in per.values()]
    # mixed: the adapters' steps share one loop, so each one's runtime is the whole loop's
    loop_s = max(runtimes) if metrics.get("adapters_mode") == "mixed" else sum(runtimes)
    result = {"wall_s": round(wall, 2), "loop_s": round(loop_s, 2), "tokens": tokens, "peak_rss_mb": peak_rss_mb()}
    result["tokens_per_s"] = round(tokens / max(loop_s, 1e-9), 1)
    result["encoder_s"] = metrics.get("encoder_seconds")
    Path(out).write_text(json.dumps(result))


def _train(config, dataset: str, tmp: Path, label: str) -> dict:
    path, out = tmp / f"{label}.json", tmp / f"{label}.result.json"
    path.write_text(json.dumps(config.to_dict()))
    command = [sys.executable, "-m", "benchmarks.multi_adapter", "--worker", str(path), dataset, str(out)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(out.read_text()), "process_wall_s": round(time.perf_counter() - start, 2)}


def train_step(adapters: int, tmp: Path) -> dict:
    """The train step alone: one adapter, K one-adapter processes, K adapters in one process (both modes)."""
    from benchmarks.common import english_documents
    from deepsynth.data.generator import render_dataset
    from deepsynth.rendering.config import RenderSettings
    from deepsynth.training.config import TrainerConfig

    docs = english_documents(8, chars=1500)
    for doc in docs:
        doc["summary"] = doc["text"].split(". ")[0][:200]
    dataset = str(tmp / "rendered")
    render_dataset(docs, RenderSettings(modes=["tiny"], workers=1, max_pages=1), dataset)
    home = os.environ.get("DEEPSYNTH_HOME") or str(tmp / "home")
    base = dict(
        model_name="tiny",
        deepsynth_home=home,
        mode="tiny",
        batch_size=4,
        num_epochs=2,
        lora_dropout=0.0,
        max_length=256,
        max_summary_tokens=48,
        progress_bar=False,
        device="cpu",
    )
    seeds = list(range(1, adapters + 1))
    _train(TrainerConfig(**base, output_dir=str(tmp / "warm-up")), dataset, tmp, "warm-up")  # builds the tiny base
    single = [
        _train(TrainerConfig(**base, seed=s, output_dir=str(tmp / f"one-{s}")), dataset, tmp, f"one-{s}") for s in seeds
    ]
    runs = {"separate": {"wall_s": round(sum(r["process_wall_s"] for r in single), 2), "runs": single}}
    runs["one_adapter"] = single[0]
    for mode in ("sequential", "mixed"):
        config = TrainerConfig(
            **base,
            output_dir=str(tmp / mode),
            adapters=[{"name": f"seed{s}", "seed": s} for s in seeds],
            adapters_mode=mode,
        )
        runs[mode] = _train(config, dataset, tmp, mode)
    separate = runs["separate"]["wall_s"]
    return {
        **runs,
        "speedup_sequential": round(separate / runs["sequential"]["process_wall_s"], 2),
        "speedup_mixed": round(separate / runs["mixed"]["process_wall_s"], 2),
        "mixed_vs_sequential_tokens_per_s": round(
            runs["mixed"]["tokens_per_s"] / max(runs["sequential"]["tokens_per_s"], 1e-9), 2
        ),
        "rss_ratio_sequential": round(runs["sequential"]["peak_rss_mb"] / runs["one_adapter"]["peak_rss_mb"], 2),
        "rss_ratio_mixed": round(runs["mixed"]["peak_rss_mb"] / runs["one_adapter"]["peak_rss_mb"], 2),
    }


def _pipeline_run(home: str, overrides: list[str]) -> float:
    env = {**os.environ, "DEEPSYNTH_HOME": home, "ZENML_CONFIG_PATH": f"{home}/zenml"}
    command = [sys.executable, "-m", "deepsynth_cli", "run", "--config", str(CONFIG), "--json"]
    for item in PIPELINE_SET + overrides:
        command += ["--set", item]
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"pipeline run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return round(time.perf_counter() - start, 2)


def pipeline(adapters: int, tmp: Path) -> dict:
    """K ``deepsynth run``s (one seed each) vs one run of a K-variant sweep, in one fresh home."""
    home = str(tmp / "pipeline-home")
    seeds = list(range(1, adapters + 1))
    warm_up = _pipeline_run(home, ["pipeline=data"])  # every measured run finds the data steps cached
    separate = [_pipeline_run(home, [f"train.seed={s}", f"register.model_name=bench-one-{s}"]) for s in seeds]
    sweep = "train.sweep={seed: [" + ", ".join(map(str, seeds)) + "]}"
    together = _pipeline_run(home, [sweep, "register.model_name=bench-sweep"])
    return {
        "data_warm_up_s": warm_up,
        "separate_runs_s": separate,
        "separate_wall_s": round(sum(separate), 2),
        "one_run_wall_s": together,
        "speedup": round(sum(separate) / together, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=4)
    parser.add_argument("--skip-pipeline", action="store_true", help="measure the train step only")
    parser.add_argument(
        "--pipeline-only", action="store_true", help="measure the whole pipeline only (prints; writes no result file)"
    )
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(*args.worker)
        return
    if args.pipeline_only:
        with tempfile.TemporaryDirectory(prefix="deepsynth-bench-multi-") as tmp:
            print(json.dumps({"adapters": args.adapters, "pipeline": pipeline(args.adapters, Path(tmp))}, indent=1))
        return
    with tempfile.TemporaryDirectory(prefix="deepsynth-bench-multi-") as tmp:
        result = {"adapters": args.adapters, "goals": GOALS, "train_step": train_step(args.adapters, Path(tmp))}
        print(json.dumps(result["train_step"], indent=1, default=str), file=sys.stderr)
        if not args.skip_pipeline:
            result["pipeline"] = pipeline(args.adapters, Path(tmp))
    path = write_result("multi_adapter", result)
    print(json.dumps({k: v for k, v in result.items() if k != "train_step"}, indent=1))
    print(f"wrote {path}", file=sys.stderr)


def report_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """BENCHMARKS.md rows (what, command, baseline, result) of a result of this benchmark."""
    k, ts, goals, command = r["adapters"], r["train_step"], r["goals"], "python -m benchmarks.multi_adapter"

    def met(ok: bool) -> str:
        return "met" if ok else "not met"

    in_step = round(sum(run["wall_s"] for run in ts["separate"]["runs"]), 2)  # load base, encode, train
    step_speedup = round(in_step / ts["sequential"]["wall_s"], 2)
    rows = [
        (
            f"Train step alone (base load, encoding, training; imports excluded), {k} adapters on the same data: "
            f"one trainer (sequential) vs {k} one-adapter trainers",
            command,
            f"{k} trainers: {in_step} s",
            f"{ts['sequential']['wall_s']} s: **{step_speedup}x** (goal ≥ {goals['train_step_speedup']}x: "
            f"{met(step_speedup >= goals['train_step_speedup'])}); as whole processes (imports included) "
            f"{ts['sequential']['process_wall_s']} s vs {ts['separate']['wall_s']} s: {ts['speedup_sequential']}x",
        ),
        (
            f"Train step, {k} adapters: mixed batches vs sequential, training tokens/s",
            command,
            f"sequential: {ts['sequential']['tokens_per_s']} tokens/s",
            f"mixed: {ts['mixed']['tokens_per_s']} tokens/s "
            f"(**{round(ts['mixed']['tokens_per_s'] / ts['sequential']['tokens_per_s'], 2)}x**); "
            f"trainer {ts['mixed']['wall_s']} s vs sequential {ts['sequential']['wall_s']} s",
        ),
        (
            f"Peak RSS, {k} adapters in one process vs one adapter's run",
            command,
            f"one adapter: {ts['one_adapter']['peak_rss_mb']:.0f} MiB",
            f"sequential {ts['sequential']['peak_rss_mb']:.0f} MiB (**{ts['rss_ratio_sequential']}x**), mixed "
            f"{ts['mixed']['peak_rss_mb']:.0f} MiB (**{ts['rss_ratio_mixed']}x**) (goal ≤ {goals['rss_ratio']}x: "
            f"{met(max(ts['rss_ratio_sequential'], ts['rss_ratio_mixed']) <= goals['rss_ratio'])})",
        ),
    ]
    if "pipeline" in r:
        p = r["pipeline"]
        rows.insert(
            0,
            (
                f"Whole pipeline, {k} adapters: one `deepsynth run` with a {k}-variant sweep vs {k} runs (one home, "
                "data steps cached)",
                command,
                f"{k} runs: {p['separate_wall_s']} s",
                f"{p['one_run_wall_s']} s: **{p['speedup']}x** (goal ≥ {goals['pipeline_speedup']}x: "
                f"{met(p['speedup'] >= goals['pipeline_speedup'])})",
            ),
        )
    return rows


if __name__ == "__main__":
    main()
